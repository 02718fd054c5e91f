"""Decoding a CTC output strip (Graves et al. 2006): greedy, prefix beam search, and the
best alignment of a given text (which frames each of its characters takes).

A path gives every frame a class or the blank; its text drops the blanks after merging
repeats ("1 1 _ 1" reads "11"). Greedy takes each frame's best class; the beam search
looks for the text whose paths together are most probable.
"""

from __future__ import annotations

import math

import numpy as np

from .paths import Segment, runs

_NEG = -math.inf


def greedy(logp: np.ndarray, blank: int) -> list[Segment]:
    """Each frame's best class, repeats merged, blanks dropped. ``logp``: (T, C)."""
    return runs(logp.argmax(1).tolist(), blank)


def _logadd(a: float, b: float) -> float:
    if a == _NEG:
        return b
    if b == _NEG:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def beam_search(logp: np.ndarray, blank: int, beam: int = 8, prune: float = 1e-4
                ) -> tuple[tuple[int, ...], float]:
    """The most probable text by prefix beam search, and its log-probability (summed over
    the paths the beam kept). Classes below ``prune`` probability in a frame are skipped."""
    # each prefix: (log-prob of its paths ending in a blank, ... ending in its last class)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG)}
    threshold = math.log(prune)
    for frame in logp:
        candidates = [k for k in np.flatnonzero(frame >= threshold).tolist() if k != blank]
        p_blank = float(frame[blank])
        if not candidates:  # only a blank: every prefix stays, their order with it
            beams = {prefix: (_logadd(pb, pnb) + p_blank, _NEG) for prefix, (pb, pnb) in beams.items()}
            continue
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix, b=_NEG, nb=_NEG, nxt=nxt):
            cur = nxt.setdefault(prefix, [_NEG, _NEG])
            cur[0], cur[1] = _logadd(cur[0], b), _logadd(cur[1], nb)

        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            add(prefix, b=total + p_blank)  # a blank: same text
            last = prefix[-1] if prefix else None
            for k in candidates:
                p = float(frame[k])
                if k == last:
                    add(prefix, nb=pnb + p)  # the repeat merges into the last character
                    add(prefix + (k,), nb=pb + p)  # a new one, after a blank
                else:
                    add(prefix + (k,), nb=total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]), reverse=True)
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam]}
    text, (pb, pnb) = max(beams.items(), key=lambda kv: _logadd(*kv[1]))
    return text, _logadd(pb, pnb)


def align(logp: np.ndarray, text: tuple[int, ...] | list[int], blank: int) -> list[Segment]:
    """The most probable path that reads ``text`` (Viterbi over CTC's graph: blank,
    c1, blank, c2, ..., blank), as the frames each character takes."""
    t_len = len(logp)
    states = [blank]
    for k in text:
        states += [int(k), blank]
    s_len = len(states)
    if not text:
        return []
    score = np.full(s_len, _NEG)
    score[0], score[1] = logp[0, blank], logp[0, states[1]]
    back = np.zeros((t_len, s_len), dtype=np.int64)
    lab = np.array(states)
    # a state may be entered from itself, the one before, or (a class unlike the class two
    # before it) skipping the blank between them
    skip = np.zeros(s_len, dtype=bool)
    skip[3::2] = lab[3::2] != lab[1:-2:2]
    for t in range(1, t_len):
        stay = score
        step = np.concatenate([[_NEG], score[:-1]])
        jump = np.where(skip, np.concatenate([[_NEG, _NEG], score[:-2]]), _NEG)
        cand = np.stack([stay, step, jump])
        pick = cand.argmax(0)
        back[t] = np.arange(s_len) - pick
        score = cand[pick, np.arange(s_len)] + logp[t, lab]
    end = s_len - 1 if score[-1] >= score[-2] else s_len - 2
    if score[end] == _NEG:  # too few frames for the text
        return []
    path = [end]
    for t in range(t_len - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    path = path[::-1]
    out: list[Segment] = []
    for t, s in enumerate(path):
        if s % 2:
            if out and out[-1].last == t - 1 and path[t - 1] == s:
                out[-1] = Segment(out[-1].label, out[-1].first, t)
            else:
                out.append(Segment(int(lab[s]), t, t))
    return out
