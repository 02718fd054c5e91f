"""A tiny string reader, trained in-process for a few steps: for the plumbing of training,
reading and the command line (what it reads is noise; accuracy is the benchmark's)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

TINY = {"epochs": 1, "batch_size": 16, "lr": 3e-3}


def tiny_strings(mnist, digits: int = 160, test: int = 24):
    """mnist-strings of the first ``digits`` training digits and ``test`` test numbers."""
    from lenet5.data.strings import StringDataset

    return dataclasses.replace(StringDataset("mnist-strings", mnist), test_size=test).head(digits)


@pytest.fixture(scope="session")
def tiny_ctc(mnist, tmp_path_factory) -> Path:
    """A lenet5-ctc checkpoint trained for 3 steps through ``lenet5.training.train``."""
    from lenet5.training import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny_ctc") / "lenet5-ctc.safetensors"
    cfg = TrainConfig.for_model("lenet5-ctc", dataset="mnist-strings", out=str(out),
                                progress=False, **TINY)
    train(cfg, tiny_strings(mnist), log=lambda _line: None)
    return out
