"""What the training loop does differently for a reader of whole numbers (task "read").

The loop (train.py) is the same for every model; the model's task decides where its
batches, its loss and its metrics come from. For a string reader they come from its
objective (``lenet5.reading.objectives``, named by the model's ``objective``): batches
composed afresh from the training digits (windows for the SDNN, whole numbers for CTC),
the objective's loss, and the reading metrics (exact match, CER, accept rate at 1% error)
on the fixed test numbers, or with ``--val-split`` on validation numbers composed from
held-out training digits (never the test set's).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..data.strings import StringDataset, Strings, compose
from ..errors import Lenet5Error
from ..models import Preprocess
from ..reading.metrics import ReadingMetrics, format_reading
from ..reading.objectives import Batch, evaluate_reader, get_objective
from ..reading.read import DecodeOptions
from .augment import writing_ranges
from .config import TrainConfig

# --loss of each objective: what the recipes name (a reader's loss is its objective's)
OBJECTIVE_LOSS = {"sdnn": "cross_entropy", "ctc": "ctc"}
VAL_SEED = 1  # validation numbers are drawn with this seed (the test set's is its own)
# Numbers read after each epoch (the first of the test or validation set): reading costs
# about as much per number as a training step, so the whole test set is read at the end.
WATCH = 2000


@dataclass(frozen=True)
class ReaderTrainMetrics:
    """The (train set) line of a reader: the mean training loss over the epoch's batches,
    and for window-trained readers (the SDNN) the share of windows classified right."""

    loss: float
    correct: int | None
    total: int

    @property
    def acc(self) -> float | None:
        return None if self.correct is None else self.correct / max(self.total, 1)

    def to_dict(self) -> dict:
        d = {"loss": self.loss, "samples": self.total}
        if self.correct is not None:
            d.update(acc=self.acc, correct=self.correct)
        return d


def check_reader_config(cfg: TrainConfig, objective: str) -> None:
    """Refuse the settings that are for classifiers of single images."""
    for flag, on in (("--distort", cfg.distort), ("--train-eval", cfg.train_eval),
                     ("--double-batch-from", cfg.double_batch_from)):
        if on:
            raise Lenet5Error(f"{flag} is for classifiers of single images, not {cfg.model}")
    other = sorted(set(cfg.augment) - {"writing"})
    if other:
        raise Lenet5Error(f"a reader of numbers takes --augment writing (each digit varied "
                          f"before the numbers are composed), not {', '.join(other)}")
    if cfg.optimizer == "sdlm":
        raise Lenet5Error(f"the sdlm optimizer is for classifiers of single images, not {cfg.model}")
    if cfg.loss != OBJECTIVE_LOSS[objective]:
        raise Lenet5Error(f"{cfg.model} trains with its {objective} objective's loss "
                          f"({OBJECTIVE_LOSS[objective]}), not --loss {cfg.loss}")


class ReaderTraining:
    """Batches, loss and metrics of a reader; what ``train`` calls for a model of task "read"."""

    def __init__(self, cfg: TrainConfig, data: StringDataset, net: nn.Module, pre: Preprocess,
                 device: torch.device, memory_format: torch.memory_format, rank: int = 0):
        check_reader_config(cfg, net.objective)
        options = {k: v for k, v in cfg.loss_args.items()}
        try:
            self.objective = get_objective(net.objective, **options)
        except TypeError as e:
            raise Lenet5Error(f"{cfg.model}: bad loss option ({e})") from None
        self.net, self.pre, self.device, self.memory_format = net, pre, device, memory_format
        self.eval_batch_size = cfg.eval_batch_size
        self.source, self.val = split_strings(data, cfg.val_split, cfg.seed)
        if "writing" in cfg.augment:
            self.source = dataclasses.replace(self.source, writing=writing_ranges(cfg.augment["writing"]))
        self.windows = net.objective == "sdnn"
        # the numbers each rank trains on: its own stream, the same for the same seed
        self.generator = torch.Generator().manual_seed(cfg.seed * 1000 + 7 + rank)
        self.watched: Strings | None = None  # what watch() chose

    @property
    def generators(self) -> dict[str, torch.Generator]:
        """What --resume must carry over besides the loop's own."""
        return {"strings": self.generator}

    def watch(self, strings: Strings) -> Strings:
        """What each epoch is evaluated on: the first ``WATCH`` of ``strings``."""
        self.watched = strings if len(strings) <= WATCH else strings.subset(slice(0, WATCH))
        return self.watched

    @property
    def epoch_size(self) -> int:
        return self.objective.epoch_size(self.source)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, Batch]:
        """A batch of ``len(idx)`` samples, composed afresh (the indices only count them)."""
        b = self.objective.batch(self.source, len(idx), self.generator, self.pre, self.device)
        return b.x.contiguous(memory_format=self.memory_format), b

    def loss(self, out: torch.Tensor, y: Batch) -> torch.Tensor:
        return self.objective.loss(out, y, self.net)

    def correct(self, out: torch.Tensor, y: Batch) -> torch.Tensor:
        """Windows classified right (the SDNN); 0 for whole-string objectives."""
        if not self.windows:
            return torch.zeros((), device=out.device, dtype=torch.long)
        return (out[:, :, 0].argmax(1) == y.targets).sum()

    def train_metrics(self, loss_sum: float, correct: int, seen: int) -> ReaderTrainMetrics:
        return ReaderTrainMetrics(loss_sum / max(seen, 1), correct if self.windows else None, seen)

    def measure(self, model: nn.Module, strings: Strings) -> ReadingMetrics:
        """How well ``model`` reads ``strings``: after each epoch by itself (an unready
        reader's many false digits would each be cut out and read again), at the end as
        ``lenet5 eval`` reads, by default."""
        alone = strings is self.watched
        options = DecodeOptions(shifts=(), verifier=None) if alone else DecodeOptions()
        m, _ = evaluate_reader(model, self.pre, strings, options, batch_size=self.eval_batch_size,
                               device=self.device)
        return m

    @staticmethod
    def format(split: str, m, epoch: int | None = None) -> str:
        if isinstance(m, ReadingMetrics):
            line = format_reading(split, m)
            return line if epoch is None else line.replace(" strings:", f" epoch: {epoch} strings:", 1)
        ep = f" epoch: {epoch}" if epoch is not None else ""
        acc = f" window acc: {m.acc:.4f}" if m.acc is not None else ""
        return f"{f'({split} set)'.ljust(11)}{ep} loss: {m.loss:.4f}{acc}"


def split_strings(data: StringDataset, fraction: float, seed: int):
    """The training source and, with ``fraction``, validation numbers: ``fraction`` of the
    training digits held out (a seeded choice) and composed as the test set is, each
    held-out digit used once; the rest are the training digits."""
    if not fraction:
        return data.train, None
    if not 0.0 < fraction < 1.0:
        raise Lenet5Error(f"--val-split must be between 0 and 1, not {fraction}")
    digits = data.digits.train
    n_val = max(1, round(len(digits) * fraction))
    perm = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed + 1))
    held, kept = digits.subset(perm[:n_val]), digits.subset(perm[n_val:])
    source = dataclasses.replace(data.train, digits=kept)
    lo, hi = data.test_options.length
    n = max(1, round(n_val * 2 / (lo + hi)))
    return source, compose(held, n, data.test_options, torch.Generator().manual_seed(VAL_SEED))
