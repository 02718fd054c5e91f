"""lenet5.data.filters against scipy.ndimage: the same outputs, and the time each takes.

    python benchmarks/filters.py [--side 1024] [--reps 5]

Each case runs both implementations in turn (best of ``--reps`` each, in one process),
checks that the outputs are identical, and prints the milliseconds and the ratio
filters / scipy. The cases are the photo stages' own calls at their largest sizes (the
image reduced to 1024 px, the paper's closing on 512 px) and labelling's worst masks:
noise at several densities, a checkerboard (one piece through its diagonals), a
serpentine of one-pixel columns, a spiral. Needs scipy (the dev extra).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _best(fn, reps: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000, out


def _same(a, b) -> bool:
    if isinstance(a, tuple):  # (labels, n)
        return a[1] == b[1] and np.array_equal(a[0], b[0])
    return a == b if isinstance(a, list) else np.array_equal(a, b)


def masks(side: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    yy, xx = np.indices((side, side))
    serpentine = np.zeros((side, side), bool)
    serpentine[:, ::2] = True  # one-pixel columns, joined alternately at the ends: one path
    serpentine[-1, 1::4] = serpentine[0, 3::4] = True
    spiral = np.zeros((side, side), bool)
    top, bottom = 0, side - 1
    while top + 2 <= bottom:
        spiral[top, top:bottom + 1] = spiral[top:bottom + 1, bottom] = True
        spiral[bottom, top:bottom + 1] = spiral[top + 2:bottom + 1, top] = True
        top, bottom = top + 2, bottom - 2
    return {f"noise {p:.0%}": rng.random((side, side)) < p for p in (0.1, 0.3, 0.5, 0.7)} | {
        "checkerboard": (yy + xx) % 2 == 0, "serpentine": serpentine, "spiral": spiral}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", type=int, default=1024, help="the image's side (default 1024)")
    ap.add_argument("--reps", type=int, default=5, help="runs of each, the best kept (default 5)")
    args = ap.parse_args(argv)
    from scipy import ndimage

    from lenet5.data import filters

    rng = np.random.default_rng(0)
    big = (rng.random((args.side, args.side)) * 255).astype(np.float32)
    half = np.log(big[:args.side // 2, :args.side // 2] + 8.0)
    cases = [
        ("gaussian sigma 1 (ink_map)", lambda: filters.gaussian_filter(big, 1.0),
         lambda: ndimage.gaussian_filter(big, 1.0)),
        ("hessian xy sigma 3.5 (line_strength)", lambda: filters.gaussian_filter(half, 3.5, (1, 1)),
         lambda: ndimage.gaussian_filter(half, 3.5, order=(1, 1))),
        ("grey closing 101 px (paper_level)", lambda: filters.grey_closing(half, 101),
         lambda: ndimage.grey_closing(half, size=(101, 101), mode="nearest")),
    ]
    for name, m in masks(args.side, rng).items():
        cases.append((f"label: {name}", lambda m=m: filters.label(m),
                      lambda m=m: ndimage.label(m, np.ones((3, 3)))))
    noise = ndimage.label(rng.random((args.side, args.side)) < 0.5, np.ones((3, 3)))[0]
    cases.append(("find_objects: noise 50%", lambda: filters.find_objects(noise),
                  lambda: ndimage.find_objects(noise)))
    print(f"{'case':<40} {'filters ms':>10} {'scipy ms':>9} {'ratio':>6}")
    failed = 0
    for name, ours, theirs in cases:
        t_ours, a = _best(ours, args.reps)
        t_theirs, b = _best(theirs, args.reps)
        same = _same(a, b)
        failed += not same
        print(f"{name:<40} {t_ours:>10.1f} {t_theirs:>9.1f} {t_ours / t_theirs:>6.2f}"
              f"{'' if same else '  DIFFERENT OUTPUT'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
