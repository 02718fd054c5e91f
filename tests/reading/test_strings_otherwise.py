"""The benchmark of numbers composed otherwise, small: every variant composed as asked and
read both ways by the shipped reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_variant_is_composed_as_asked_and_read_both_ways(mnist_dir, tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks.strings_otherwise import VARIANTS, main

    out = tmp_path / "otherwise.json"
    assert main(["--data-dir", str(mnist_dir), "--strings", "12", "--json", str(out)]) == 0
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(VARIANTS) <= set(rows)
    for name, change in VARIANTS.items():
        options = rows[name]["options"]
        assert all(options[k] == (list(v) if isinstance(v, tuple) else v)  # as JSON
                   for k, v in change.items())
        for view in ("tensor", "as_read"):
            assert 0 <= rows[name][view]["exact_match"] <= 1 and rows[name][view]["cer"] >= 0
    assert rows["as the test set"]["tensor"]["exact_match"] >= 0.75  # the shipped reader reads
