"""The per-epoch metrics log: JSON lines, and the same records as CSV for spreadsheets.

A run with the checkpoint ``runs/classic.safetensors`` writes, after every epoch,
``runs/classic.metrics.jsonl`` (one JSON object a line: epoch, learning rate, batch size,
training seconds, the train and test (or val) metrics) and ``runs/classic.metrics.csv``
(one row an epoch, the nested metrics as ``train_loss``, ``test_acc``, ...). Both are
rewritten atomically with the records of the earlier epochs kept, so a resumed run appends
and never duplicates.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..io import atomic_write_text
from .callbacks import Callback, Loop


def csv_path_for(log_path: str | Path) -> Path:
    """``runs/classic.metrics.jsonl`` -> ``runs/classic.metrics.csv``."""
    return Path(log_path).with_suffix(".csv")


def append_record(log_path: Path, record: dict) -> list[dict]:
    """Add ``record`` to the JSON-lines log, atomically, after the records of earlier epochs;
    returns every record now in the log.

    Records of this epoch or later (left by a run interrupted after logging an epoch but
    before saving its state, or by an earlier run with the same path) are dropped, so a
    resumed run appends and never duplicates; epoch 1 starts a fresh log.
    """
    kept = []
    if record["epoch"] > 1 and log_path.is_file():
        for line in log_path.read_text().splitlines():
            try:
                old = json.loads(line)
                if old["epoch"] < record["epoch"]:
                    kept.append(old)
            except (ValueError, KeyError, TypeError):
                continue  # not a record of ours
    records = [*kept, record]
    atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in records))
    return records


def flatten(record: dict, prefix: str = "") -> dict:
    """``{"train": {"loss": 0.1}}`` -> ``{"train_loss": 0.1}``."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}_"))
        else:
            flat[prefix + key] = value
    return flat


def write_csv(path: Path, records: list[dict]) -> None:
    """The records as CSV, one row each; the columns in the order they first appear."""
    rows = [flatten(r) for r in records]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


class MetricsLog(Callback):
    """Writes each epoch's record to ``path`` (JSON lines) and beside it as CSV."""

    name = "metrics_log"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.csv_path = csv_path_for(self.path)

    def on_epoch_end(self, loop: Loop) -> None:
        write_csv(self.csv_path, append_record(self.path, loop.record))
