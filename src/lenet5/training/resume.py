"""Resumable training: the run's state after every epoch, and the metrics log appended.

A run with a checkpoint path ``runs/classic.safetensors`` keeps ``runs/classic.state.pt``
beside it while it is unfinished: written (atomically) before the first epoch and after
every epoch but the last, removed once the final checkpoint is saved. It holds everything
the loop's future depends on, so ``lenet5 train --resume runs/classic.state.pt`` carries
on from the last completed epoch and ends with exactly the numbers of a run never
interrupted (same seed, same machine, CPU):

- the model's weights, the optimizer's state, the learning-rate schedule's state, and the
  moving average of the weights when the run keeps one (``--ema``);
- every random generator the loop draws from: the named ``torch.Generator``s the loop
  registers (``shuffle``, ...) and the global torch, CUDA, NumPy and Python states;
- the epoch, the history of per-epoch records, the config and the dataset's description.

Only tensors, numbers, strings, lists and dicts go in, so it is read back with
``torch.load(weights_only=True)``: nothing is unpickled.

An interrupted epoch is simply done again: the state on disk is always that of a
completed epoch, never of half of one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import Dataset, load_dataset
from ..data.folder import folder_format
from ..errors import Lenet5Error
from ..io import atomic_write_bytes, atomic_write_text
from ..models import get_model_entry
from .config import TrainConfig

FORMAT = "lenet5-train-state"
VERSION = 1
STATE_SUFFIX = ".state.pt"


def state_path_for(checkpoint: str | Path) -> Path:
    """``runs/classic.safetensors`` -> ``runs/classic.state.pt``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + STATE_SUFFIX)


def find_state(path: str | Path) -> Path:
    """The state file named by ``--resume``: the file itself, or the one beside a checkpoint."""
    path = Path(path)
    if path.name.endswith(STATE_SUFFIX):
        if not path.is_file():
            raise Lenet5Error(f"--resume: {path} does not exist")
        return path
    state = state_path_for(path)
    if state.is_file():
        return state
    if path.is_file():
        raise Lenet5Error(f"--resume: no {state.name} beside {path}: that run finished "
                          "(the state file is removed once the final checkpoint is saved)")
    raise Lenet5Error(f"--resume: neither {path} nor {state} exists")


# ---------------------------------------------------------------------------- random states

def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------- the state file

def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state file written by :class:`RunState`; refuse anything else clearly."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise Lenet5Error(f"{path} does not exist") from None
    except Exception as e:  # truncated, not a torch file, or holding objects we never write
        raise Lenet5Error(f"{path} is not a lenet5 training state ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise Lenet5Error(f"{path} is not a lenet5 training state")
    if state.get("version", 0) > VERSION:
        raise Lenet5Error(f"{path} was written by a newer lenet5 (format {state['version']})")
    return state


class RunState:
    """What :func:`train` needs to save and restore for ``--resume``.

    ``generators`` are the named generators the loop draws from (``{"shuffle": g}``); a
    new source of randomness (augmentation, sampling) adds its generator to this dict and
    is saved and restored with the rest, no other change needed.
    """

    def __init__(self, path: Path | None, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                 schedule: Any, generators: dict[str, torch.Generator], config: dict,
                 dataset: dict, epochs: int, average: nn.Module | None = None):
        self.path, self.model, self.optimizer, self.schedule = path, model, optimizer, schedule
        self.average = average  # the moving average of the weights (--ema), if any
        self.generators, self.config, self.dataset, self.epochs = generators, config, dataset, epochs

    def start(self, resume: dict | None, history: list[dict]) -> int:
        """The first epoch to run: after the resumed state's, or 1 (saving the initial state)."""
        if resume is None:
            self.save(0, history)
            return 1
        self.model.load_state_dict(resume["model"])
        self.optimizer.load_state_dict(resume["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(resume["schedule"])
        if self.average is not None:
            if resume.get("average") is None:
                raise Lenet5Error("--resume: the state has no moving average of the weights")
            self.average.load_state_dict(resume["average"])
        missing = sorted(set(self.generators) - set(resume["generators"]))
        if missing:
            raise Lenet5Error(f"--resume: the state has no {', '.join(missing)} generator state")
        for name, gen in self.generators.items():
            gen.set_state(resume["generators"][name])
        _set_rng_state(resume["rng"])
        history[:] = [json.loads(r) for r in resume["history"]]
        return resume["epoch"] + 1

    def epoch_done(self, epoch: int, history: list[dict]) -> None:
        """Save after a completed epoch; the last epoch's result is the checkpoint itself."""
        if epoch < self.epochs:
            self.save(epoch, history)

    def save(self, epoch: int, history: list[dict]) -> None:
        if self.path is None:
            return
        state = {
            "format": FORMAT,
            "version": VERSION,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "average": self.average.state_dict() if self.average is not None else None,
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "rng": _rng_state(),
            "history": [json.dumps(r) for r in history],  # exactly as logged
            "config": json.dumps(self.config),
            "dataset": json.dumps(self.dataset),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.path, buf.getvalue())

    def finished(self) -> None:
        """The final checkpoint is saved: nothing is left to resume."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- metrics log

def append_record(log_path: Path, record: dict) -> None:
    """Add ``record`` to the JSON-lines log, atomically, after the records of earlier epochs.

    Records of this epoch or later (left by a run interrupted after logging an epoch but
    before saving its state, or by an earlier run with the same path) are dropped, so a
    resumed run appends and never duplicates; epoch 1 starts a fresh log.
    """
    kept = []
    if record["epoch"] > 1 and log_path.is_file():
        for line in log_path.read_text().splitlines():
            try:
                if json.loads(line)["epoch"] < record["epoch"]:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # not a record of ours
    atomic_write_text(log_path, "".join(x + "\n" for x in [*kept, json.dumps(record)]))


# ---------------------------------------------------------------------------- the config

# Settings a resumed run may change: where it runs and reads its data, and what it shows.
# Every other TrainConfig field defines the run, and a resumed run keeps its own.
CHANGEABLE = ("device", "data_dir", "progress")


def resumed_config(state: dict, state_path: Path, given: Mapping[str, Any]) -> dict[str, Any]:
    """The saved config with the user's flags applied; ``given`` maps TrainConfig fields to
    the flags passed (None or False: not passed).

    A flag that defines the run and differs from the saved value is refused with a clear
    error; the checkpoint goes beside the state file, wherever that is now.
    """
    config = json.loads(state["config"])
    saved_out = Path(config["out"])
    config["out"] = str(state_path.with_name(
        state_path.name.removesuffix(STATE_SUFFIX) + saved_out.suffix))
    for f in dataclasses.fields(TrainConfig):
        value = given.get(f.name)
        if value is None or value is False or f.name == "dataset":
            continue
        if f.name in CHANGEABLE:
            config[f.name] = value
        elif f.name == "out":
            if Path(value).resolve() != Path(config["out"]).resolve():
                raise Lenet5Error(f"--resume: the run's checkpoint goes beside its state file, "
                                  f"to {config['out']}, not {value} (leave --out out)")
        elif value != config.get(f.name):
            flag = "--" + f.name.replace("_", "-")
            raise Lenet5Error(f"--resume: {flag} {value} differs from the run's "
                              f"{config.get(f.name)}; a resumed run keeps its own settings "
                              "(leave the flag out)")
    return config


def prepare_resume(path: str | Path, given: Mapping[str, Any], limit: int | None = None
                   ) -> tuple[TrainConfig, Dataset, dict]:
    """Everything ``train(cfg, data, resume=state)`` needs to carry on the run at ``path``
    (its state file, or its checkpoint path): the config, the same data, the state."""
    state_path = find_state(path)
    state = load_state(state_path)
    config = resumed_config(state, state_path, given)
    described = json.loads(state["dataset"])
    if limit is not None and limit != described.get("limit"):
        raise Lenet5Error(f"--resume: --limit {limit} differs from the run's "
                          f"{described.get('limit')} (leave the flag out)")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in config.items() if k in known})
    entry = get_model_entry(cfg.model)
    data = load_dataset(cfg.dataset, cfg.data_dir,
                        image_format=folder_format(entry.input_size, entry.preprocess.pad)
                        ).head(described.get("limit"))
    if data.content_hash != described.get("sha256"):
        raise Lenet5Error(f"--resume: the {cfg.dataset} data here differs from the data the run "
                          "was trained on (content hash)")
    return cfg, data, state
