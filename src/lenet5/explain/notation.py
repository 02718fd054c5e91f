"""How the walk writes numbers, sizes and shapes: ``5x5``, ``6 x 28 x 28``, ``2.33``."""

from __future__ import annotations

from fractions import Fraction

Number = int | Fraction


def as_tuple(v, n: int) -> tuple:
    if isinstance(v, (tuple, list)):
        return tuple(v) * n if len(v) == 1 else tuple(v)
    return (v,) * n


def num(v: Number) -> str:
    if isinstance(v, Fraction) and v.denominator != 1:
        return f"{float(v):.2f}".rstrip("0").rstrip(".")
    return str(int(v))


def extent(values) -> str:
    """(5, 5) -> "5x5": sizes, written out in full."""
    return "x".join(num(v) for v in values)


def once(values) -> str:
    """(1, 1) -> "1"; (1, 2) -> "1x2": strides, paddings, fields, once when all equal."""
    values = [num(v) for v in values]
    return values[0] if len(set(values)) == 1 else "x".join(values)


def dims(shape, sep: str = " x ") -> str:
    return sep.join(str(n) for n in shape)


def dim_names(nd: int) -> list[str]:
    return {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}.get(nd, [f"dim{i}" for i in range(nd)])
