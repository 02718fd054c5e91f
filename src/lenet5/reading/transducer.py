"""The SDNN's decoder, as the paper reads its output strip (LeCun et al. 1998, VII.A-B).

The SDNN says, every 4 pixels, how much each digit and "none" fit the window there. A
digit is seen from several neighbouring windows, and a window half over a digit may see a
different one. The paper composes the strip with a character model, a transducer with one
state per character and one for "none", and takes the best path by Viterbi:

- the same character on adjacent outputs is one character (a duplicate hit); two equal
  characters in a row need a "none" between them;
- entering a character costs ``enter`` (in log-probability), so that a lone, weak hit
  (part of a character seen from the side) is not read as one more digit;
- going straight from one character to another, with no "none" between, costs ``switch``
  more: neighbouring digits normally show a gap to a window centred between them, and a
  hit of another class inside a run of one is usually part of a character.

With both penalties 0 the best path is each frame's best class, duplicates merged.
"""

from __future__ import annotations

import numpy as np

from .paths import Segment, runs


def viterbi(logp: np.ndarray, none: int, enter: float = 0.0, switch: float = 0.0) -> list[Segment]:
    """Best path through the character model over ``logp`` (T, C) log-probabilities, class
    ``none`` the "none" class; its characters and the frames each spans."""
    t_len, c = logp.shape
    if t_len == 0:
        return []
    chars = np.array([k for k in range(c) if k != none])
    score = logp[0].astype(np.float64).copy()
    score[chars] -= enter
    back = np.zeros((t_len, c), dtype=np.int64)
    for t in range(1, t_len):
        prev = score
        # for each character state: stay in it, come from none, or switch from the best
        # other character (the best one, or the second best when the best is itself)
        order = chars[np.argsort(prev[chars])[::-1][:2]]
        best_other = np.where(chars == order[0], order[-1], order[0])
        cand = np.stack([prev[chars], np.full(len(chars), prev[none] - enter),
                         prev[best_other] - enter - switch])
        pick = cand.argmax(0)
        new = np.empty(c)
        new[chars] = cand[pick, np.arange(len(chars))]
        back[t, chars] = np.where(pick == 0, chars, np.where(pick == 1, none, best_other))
        # none: from none or from any character, for free
        from_char = chars[prev[chars].argmax()]
        back[t, none] = none if prev[none] >= prev[from_char] else from_char
        new[none] = max(prev[none], prev[from_char])
        score = new + logp[t]
    path = [int(score.argmax())]
    for t in range(t_len - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return runs(path[::-1], none)
