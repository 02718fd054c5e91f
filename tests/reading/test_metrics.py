"""The string metrics on hand-made cases."""

from __future__ import annotations

import pytest

from lenet5.reading.metrics import accept_rate, by_length, edit_distance, reading_metrics


@pytest.mark.parametrize("a, b, d", [("", "", 0), ("123", "123", 0), ("123", "", 3),
                                     ("", "45", 2), ("1234", "1034", 1), ("1234", "124", 1),
                                     ("1234", "12334", 1), ("kitten", "sitting", 3)])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)


def test_accept_rate_stops_where_the_error_passes_the_bar():
    conf = [0.99, 0.98, 0.97, 0.96, 0.5, 0.4]
    right = [True, True, True, True, False, True]
    r = accept_rate(conf, right, 0.01)
    assert r.accepted == pytest.approx(4 / 6) and r.error == 0 and r.threshold == 0.96
    # at 20%: all five of the top five with one wrong (20%), and all six (1/6 wrong) too
    assert accept_rate(conf, right, 0.2).accepted == 1.0


def test_accept_rate_when_the_most_confident_is_wrong():
    assert accept_rate([0.9, 0.8], [False, True], 0.01).accepted == 0.0
    # 1 wrong in 101 is under 1%
    assert accept_rate([0.95] + [0.9] * 100, [False] + [True] * 100, 0.01).accepted == 1.0


def test_accept_rate_takes_equal_confidences_together():
    # the tie at 0.8 holds a wrong answer: accepting one of them only is not possible
    r = accept_rate([0.9, 0.8, 0.8], [True, True, False], 0.01)
    assert r.accepted == pytest.approx(1 / 3)


def test_reading_metrics_and_by_length():
    truths = ["12", "345", "6", "789"]
    reads = ["12", "35", "6", "788"]
    m = reading_metrics(truths, reads, [0.9, 0.3, 0.8, 0.5])
    assert m.exact == 2 and m.exact_match == 0.5
    assert m.edits == 2 and m.characters == 9 and m.cer == pytest.approx(2 / 9)
    assert m.accept_rate == 0.5  # the two right ones are the most confident
    lengths = by_length(truths, reads, [0.9, 0.3, 0.8, 0.5])
    assert sorted(lengths) == [1, 2, 3]
    assert lengths[3].strings == 2 and lengths[3].exact == 0 and lengths[1].exact_match == 1
