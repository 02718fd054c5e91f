"""Resumable training: the run's state after every epoch.

A run with a checkpoint path ``runs/classic.safetensors`` keeps ``runs/classic.state.pt``
beside it while it is unfinished: written (atomically) before the first epoch and after
every epoch but the last, removed once the final checkpoint is saved. It holds everything
the loop's future depends on, so ``lenet5 train --resume runs/classic.state.pt`` carries
on from the last completed epoch and ends with exactly the numbers of a run never
interrupted (same seed, same machine, CPU):

- the model's weights, the optimizer's state and the learning-rate schedule's state;
- the state of every hook of the loop, under the hook's name (``Callback.state_dict``:
  the moving average of the weights, the generators of the augmentations and of SDLM's
  curvature samples, ...), without this module knowing what they hold;
- every random generator the loop draws from: its own named ``torch.Generator``s
  (``shuffle``) and the global torch, CUDA, NumPy and Python states;
- the epoch, the history of per-epoch records, the config and the dataset's description.

Only tensors, numbers, strings, lists and dicts go in, so it is read back with
``torch.load(weights_only=True)``: nothing is unpickled. A state that does not hold what
it should is refused with one line naming what is wrong.

An interrupted epoch is simply done again: the state on disk is always that of a
completed epoch, never of half of one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import Dataset, load_dataset
from ..data.folder import folder_format
from ..errors import Lenet5Error
from ..io import atomic_write_bytes
from ..models import get_model_entry
from .callbacks import Callback
from .config import TrainConfig

FORMAT = "lenet5-train-state"
VERSION = 2  # 2: hooks' states under their names (1: the weight average and generators apart)
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
    version = state.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise Lenet5Error(f"{path}: the training state has no valid format version")
    if version > VERSION:
        raise Lenet5Error(f"{path} was written by a newer lenet5 (format {version})")
    if version == 1:
        state = _from_version_1(state)
    problem = _malformed(state)
    if problem:
        raise Lenet5Error(f"{path}: malformed training state: {problem}")
    return state


# what each entry of a state must be: (its type, what to call it in an error)
_ENTRIES = {
    "epoch": (int, "an epoch number"),
    "model": (dict, "the weights"),
    "optimizer": (dict, "the optimizer's state"),
    "schedule": ((dict, type(None)), "the schedule's state"),
    "generators": (dict, "the generators"),
    "callbacks": (dict, "the hooks' states"),
    "rng": (dict, "the random states"),
    "history": (list, "the history"),
    "config": (str, "the config (JSON)"),
    "dataset": (str, "the dataset's description (JSON)"),
}


def _malformed(state: dict) -> str | None:
    """What is wrong with ``state``'s layout, or None."""
    for key, (kind, what) in _ENTRIES.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            return f"{key!r} is not {what}"
    if state["epoch"] < 0:
        return f"epoch {state['epoch']}"
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        return "'model' is not a mapping of names to tensors"
    if not all(isinstance(v, torch.Tensor) for v in state["generators"].values()):
        return "'generators' holds something other than generator states"
    if not all(isinstance(v, dict) for v in state["callbacks"].values()):
        return "'callbacks' holds something other than a hook's state"
    try:
        history = [json.loads(r) for r in state["history"]]
        for name in ("config", "dataset"):
            if not isinstance(json.loads(state[name]), dict):
                return f"{name!r} is not a JSON object"
    except (TypeError, ValueError):
        return "the history, the config or the dataset is not JSON"
    if len(history) != state["epoch"] or not all(isinstance(r, dict) for r in history):
        return f"the history does not hold one record for each of the {state['epoch']} epochs"
    return None


def _from_version_1(state: dict) -> dict:
    """A state of format 1, when the weight average and the generators of distortions and
    curvature samples were the loop's own, as hooks' states."""
    state = dict(state)
    generators = dict(state.get("generators") or {})
    hooks: dict[str, dict] = {}
    for name in ("distort", "curvature"):
        if name in generators:
            hooks[name] = {"generator": generators.pop(name)}
    average = state.pop("average", None)
    if isinstance(average, dict) and "n_averaged" in average:
        hooks["ema"] = {"weights": {k.removeprefix("module."): v for k, v in average.items()
                                    if k.startswith("module.")},
                        "updates": int(average["n_averaged"])}
    state.update(generators=generators, callbacks=hooks, version=VERSION)
    return state


class RunState:
    """What :func:`train` needs to save and restore for ``--resume``.

    ``generators`` are the loop's own named generators (``{"shuffle": g}``); ``callbacks``
    are its hooks, each saved and restored under its ``name`` with ``state_dict`` and
    ``load_state_dict``: a new source of randomness or of state (an augmentation, a
    sampler) is a hook holding its own, and is carried over with no change here.
    """

    def __init__(self, path: Path | None, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                 schedule: Any, generators: dict[str, torch.Generator], config: dict,
                 dataset: dict, epochs: int, callbacks: Sequence[Callback] = ()):
        self.path, self.model, self.optimizer, self.schedule = path, model, optimizer, schedule
        self.callbacks = list(callbacks)
        names = [cb.name for cb in self.callbacks]
        if len(set(names)) != len(names):
            raise ValueError(f"two hooks of the loop have the same name: {sorted(names)}")
        self.generators, self.config, self.dataset, self.epochs = generators, config, dataset, epochs

    def start(self, resume: dict | None, history: list[dict]) -> int:
        """The first epoch to run: after the resumed state's, or 1 (saving the initial state)."""
        if resume is None:
            self.save(0, history)
            return 1
        if not resume["epoch"] < self.epochs:
            raise Lenet5Error(f"--resume: the state is of epoch {resume['epoch']}, and the run "
                              f"has {self.epochs}")
        _restore("the weights", self.model.load_state_dict, resume["model"])
        _restore("the optimizer's state", self.optimizer.load_state_dict, resume["optimizer"])
        if self.schedule is not None:
            _restore("the schedule's state", self.schedule.load_state_dict, resume["schedule"])
        for name, gen in self.generators.items():
            if name not in resume["generators"]:
                raise Lenet5Error(f"--resume: the state has no {name} generator state")
            _restore(f"the {name} generator's state", gen.set_state, resume["generators"][name])
        for cb in self.callbacks:
            saved = resume["callbacks"].get(cb.name)
            if saved is None:
                if cb.state_dict():
                    raise Lenet5Error(f"--resume: the state has nothing for the {cb.name} hook")
                continue
            _restore(f"the {cb.name} hook's state", cb.load_state_dict, saved)
        _restore("the random states", _set_rng_state, resume["rng"])
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
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
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


def _restore(what: str, load, state: Any) -> None:
    """``load(state)``, with a state that does not fit refused in one line."""
    try:
        load(state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise Lenet5Error(f"--resume: {what} in the state does not fit this run: {first}") from None


# ---------------------------------------------------------------------------- the config

# Settings a resumed run may change: where it runs and reads its data, and what it shows.
# Every other TrainConfig field defines the run, and a resumed run keeps its own.
CHANGEABLE = ("device", "data_dir", "progress", "tensorboard")


def resumed_config(state: dict, state_path: Path, given: Mapping[str, Any]) -> dict[str, Any]:
    """The saved config with the user's flags applied; ``given`` maps TrainConfig fields to
    the flags passed (None or False: not passed).

    A flag that defines the run and differs from the saved value is refused with a clear
    error; the checkpoint goes beside the state file, wherever that is now.
    """
    config = json.loads(state["config"])
    TrainConfig.from_dict(config, "--resume: the run's config")  # every value of its type
    saved_out = Path(config.get("out") or "run.safetensors")
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
    saved_limit = described.get("limit")
    if saved_limit is not None and (not isinstance(saved_limit, int) or isinstance(saved_limit, bool)
                                    or saved_limit < 1):
        raise Lenet5Error(f"--resume: {state_path}: the dataset's limit {saved_limit!r} is not "
                          "a number of images")
    if limit is not None and limit != saved_limit:
        raise Lenet5Error(f"--resume: --limit {limit} differs from the run's "
                          f"{saved_limit} (leave the flag out)")
    cfg = TrainConfig.from_dict(config, "--resume: the run's config")
    entry = get_model_entry(cfg.model)
    data = load_dataset(cfg.dataset, cfg.data_dir,
                        image_format=folder_format(entry.input_size, entry.preprocess.pad)
                        ).head(saved_limit)
    if data.content_hash != described.get("sha256"):
        raise Lenet5Error(f"--resume: the {cfg.dataset} data here differs from the data the run "
                          "was trained on (content hash)")
    for arg, wanted in (("num_classes", len(data.classes)), ("in_channels", data.in_channels)):
        if cfg.model_args.get(arg, wanted) != wanted:  # checked before the model is built
            raise Lenet5Error(f"--resume: the run's model has {arg}={cfg.model_args[arg]!r}, "
                              f"and its data {wanted}")
    return cfg, data, state
