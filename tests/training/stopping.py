"""Runs stopped the way a killed run stops: after an epoch is logged, before its state."""

import pytest

from lenet5.training import train
from lenet5.training.resume import load_state, state_path_for


class Stop(Exception):
    pass


def train_until(cfg, data, epoch, **kwargs):
    """Train ``cfg`` and stop once epoch ``epoch + 1`` is logged (its state not saved);
    return the state on disk: that of ``epoch``."""
    def stop(record):
        if record["epoch"] == epoch + 1:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, data, log=lambda s: None, on_epoch=stop, **kwargs)
    state = load_state(state_path_for(cfg.out))
    assert state["epoch"] == epoch
    return state
