"""Per-class numbers and the confusion matrix, by hand and through `lenet5 eval`."""

import re

import pytest
import torch

from lenet5.evaluation import confusion_matrix, format_confusion, format_per_class, per_class_stats
from tests.conftest import run_cli


def test_confusion_and_per_class_by_hand():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    preds = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2, 0])
    cm = confusion_matrix(labels, preds, 4)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 3, 0], [0, 0, 0, 0]]
    s = per_class_stats(cm, "abcd")
    assert (s[0].images, s[0].correct, s[0].predicted) == (3, 2, 3)
    assert s[0].accuracy == s[0].recall == pytest.approx(2 / 3)
    assert s[1].precision == pytest.approx(1 / 2) and s[1].recall == pytest.approx(1 / 2)
    assert s[2].precision == pytest.approx(3 / 4) and s[2].recall == pytest.approx(3 / 4)
    assert s[2].f1 == pytest.approx(3 / 4)
    assert (s[3].precision, s[3].recall, s[3].f1) == (0.0, 0.0, 0.0)  # never seen, never said

    table = format_per_class(cm, "abcd").splitlines()
    assert table[0].split() == ["class", "images", "correct", "miss", "accuracy", "precision",
                                "recall", "f1"]
    assert table[2].split() == ["a", "3", "2", "1", "0.6667", "0.6667", "0.6667", "0.6667"]
    assert table[-3].split()[:5] == ["all", "9", "6", "3", "0.6667"]

    text = format_confusion(cm, "abcd").splitlines()
    assert text[0].split() == ["true\\pred", "a", "b", "c", "d", "total"]
    assert text[1].split() == ["a", "2", "1", ".", ".", "3"]
    assert text[-1].split() == ["total", "3", "2", "4", "0", "9"]


def test_eval_per_class_and_confusion_agree_with_the_metrics_line(small_run, mnist_dir):
    r = run_cli("eval", str(small_run), "--data-dir", str(mnist_dir), "--per-class",
                "--confusion", "--limit", "2000")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    m = re.match(r"\(test set\)  loss: \S+ acc: (\S+) mcr: \S+ correct: (\d+) miss: (\d+)$", out[0])
    assert m, out[0]
    acc, correct, miss = m.group(1), int(m.group(2)), int(m.group(3))

    start = out.index(next(line for line in out if line.startswith("class ")))
    rows = {line.split()[0]: line.split() for line in out[start + 2:start + 14]
            if re.match(r"^(\d|all)\s", line)}
    per_digit = [rows[str(d)] for d in range(10)]
    assert sum(int(x[1]) for x in per_digit) == correct + miss == 2000
    assert sum(int(x[2]) for x in per_digit) == correct
    assert rows["all"][1:5] == [str(correct + miss), str(correct), str(miss), acc]

    start = next(i for i, line in enumerate(out) if line.startswith("true\\pred"))
    matrix = [[0 if v == "." else int(v) for v in line.split()[1:11]] for line in out[start + 1:start + 11]]
    assert sum(matrix[i][i] for i in range(10)) == correct
    for d in range(10):
        assert sum(matrix[d]) == int(per_digit[d][1])  # row total = images of the digit
        assert matrix[d][d] == int(per_digit[d][2])
        predicted = sum(row[d] for row in matrix)
        if predicted:
            assert float(per_digit[d][5]) == pytest.approx(matrix[d][d] / predicted, abs=5e-5)
