"""The decoders on hand-made output strips: the SDNN's character model, CTC greedy, beam
search and alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lenet5.reading import ctc, transducer
from lenet5.reading.paths import Segment, runs
from lenet5.reading.read import DecodeOptions, decode_one

N = 10  # "none" / the blank, after the ten digits


def strip(*frames: dict[int, float]) -> np.ndarray:
    """Log-probabilities (T, 11): each frame gives some classes a probability, the rest of
    the mass spread over the other classes."""
    out = np.zeros((len(frames), 11))
    for t, f in enumerate(frames):
        rest = (1 - sum(f.values())) / (11 - len(f))
        out[t] = [f.get(k, rest) for k in range(11)]
    return np.log(out)


def text(segments: list[Segment]) -> str:
    return "".join(str(s.label) for s in segments)


def test_runs_merge_repeats_and_drop_blanks():
    assert runs([N, 3, 3, N, 3, 5, 5, N], N) == [Segment(3, 1, 2), Segment(3, 4, 4),
                                                  Segment(5, 5, 6)]
    assert runs([N, N], N) == [] and runs([], N) == []


def test_transducer_merges_a_character_on_adjacent_outputs():
    s = strip({N: .9}, {3: .8}, {3: .9}, {3: .7}, {N: .9})
    assert transducer.viterbi(s, N) == [Segment(3, 1, 3)]


def test_transducer_needs_none_between_equal_characters():
    s = strip({3: .9}, {N: .8}, {3: .9})
    assert text(transducer.viterbi(s, N)) == "33"


def test_transducer_on_all_none_and_on_nothing():
    assert transducer.viterbi(strip({N: .9}, {N: .6}, {N: .95}), N) == []
    assert transducer.viterbi(np.zeros((0, 11)), N) == []


def test_transducer_removes_a_partial_character_hit_inside_a_run():
    # a window half over the 3 sees something like an 8
    s = strip({N: .9}, {3: .8}, {8: .5, 3: .4}, {3: .8}, {N: .9})
    assert text(transducer.viterbi(s, N)) == "383"  # no character model: each frame's best
    assert text(transducer.viterbi(s, N, switch=2.0)) == "3"


def test_transducer_drops_a_lone_weak_hit_with_an_entering_cost():
    s = strip({N: .9}, {7: .55, N: .4}, {N: .9}, {2: .95}, {N: .9})
    assert text(transducer.viterbi(s, N)) == "72"
    assert text(transducer.viterbi(s, N, enter=0.5)) == "2"


def test_transducer_reads_different_adjacent_characters():
    s = strip({1: .9}, {4: .9}, {4: .9}, {N: .9}, {4: .9})
    assert transducer.viterbi(s, N) == [Segment(1, 0, 0), Segment(4, 1, 2), Segment(4, 4, 4)]


def test_ctc_greedy():
    s = strip({N: .9}, {5: .6}, {5: .7}, {N: .9}, {5: .8}, {0: .9})
    assert greedy_text(s) == "550"
    assert greedy_text(strip({N: .9})) == ""


def greedy_text(s):
    return text(ctc.greedy(s, N))


def test_beam_search_sums_the_paths_of_a_text():
    # every frame's best class is the blank (greedy reads nothing), but the two frames
    # together make a 7 more probable than nothing: 1 - 0.4 * 0.4 = 0.84 against 0.16
    s = strip({N: .4, 7: .35}, {N: .4, 7: .35})
    assert greedy_text(s) == ""
    best, logp = ctc.beam_search(s, N, beam=4)
    assert best == (7,)
    assert math.exp(logp) == pytest.approx(.35 * .35 + 2 * .35 * .4, rel=1e-6)


def test_beam_search_keeps_repeats_apart_only_with_a_blank():
    s = strip({2: .9}, {2: .9}, {N: .9}, {2: .9})
    assert ctc.beam_search(s, N)[0] == (2, 2)
    assert ctc.beam_search(strip({2: .9}, {2: .9}), N)[0] == (2,)


def test_align_places_each_character():
    s = strip({N: .9}, {4: .9}, {4: .6}, {N: .9}, {N: .9}, {4: .8}, {N: .9})
    assert ctc.align(s, (4, 4), N) == [Segment(4, 1, 2), Segment(4, 5, 5)]
    assert ctc.align(s, (), N) == []
    assert ctc.align(strip({4: .9}, {4: .9}), (4, 4), N) == []  # no room for the blank


def test_beam_decoding_takes_the_best_path_when_it_holds_over_half(monkeypatch):
    options = DecodeOptions()
    sure = strip({N: .9}, {3: .95}, {N: .9}, {8: .9})  # best path .9 * .95 * .9 * .9 > 0.5
    unsure = strip({N: .4, 7: .35}, {N: .4, 7: .35})  # best path (nothing) 0.16
    searched = []
    beam_search = ctc.beam_search
    monkeypatch.setattr(ctc, "beam_search", lambda *a, **k: searched.append(1) or beam_search(*a, **k))
    assert text(decode_one(sure, "ctc", N, options)) == "38" and not searched
    assert text(decode_one(unsure, "ctc", N, options)) == "7" and searched


def test_beam_decoding_reads_as_the_beam_search_does():
    rng = np.random.default_rng(0)
    over_half = 0
    for _ in range(200):  # random strips, some peaked enough to hold their best path over half
        logits = rng.normal(size=(8, 11)) * rng.uniform(2, 16)
        logits[:, N] += rng.uniform(0, 6)
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        over_half += logp.max(1).sum() > math.log(0.5)
        got = tuple(s.label for s in decode_one(logp, "ctc", N, DecodeOptions()))
        assert got == ctc.beam_search(logp, N)[0]
    assert 20 < over_half < 180
