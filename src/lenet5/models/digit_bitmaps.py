"""The fixed prototypes of lenet5-1998's output layer: a stylized 7x12 bitmap of each digit.

LeCun et al. (1998), section II.B: each output RBF unit compares F6's 84 values with a
fixed +1/-1 vector drawn from a 7x12 bitmap of its character. The paper's font (Fig. 3)
is not published as data; these bitmaps are drawn for this project in its spirit.
"""

from __future__ import annotations

import torch

# The output layer's prototypes: a stylized 7x12 bitmap of each digit, drawn for this
# project in the spirit of the paper's Fig. 3 font ('#' ink = +1, '.' background = -1).
# F6's 84 units are these 12 rows of 7, read row by row.
DIGIT_BITMAPS: tuple[str, ...] = (
    """
    .......
    ..###..
    .##.##.
    ##...##
    ##...##
    ##...##
    ##...##
    ##...##
    .##.##.
    ..###..
    .......
    .......
    """,
    """
    .......
    ...##..
    ..###..
    .####..
    ...##..
    ...##..
    ...##..
    ...##..
    ...##..
    .######
    .......
    .......
    """,
    """
    .......
    .#####.
    ##...##
    .....##
    ....##.
    ...##..
    ..##...
    .##....
    ##.....
    #######
    .......
    .......
    """,
    """
    .......
    .#####.
    ##...##
    .....##
    ..####.
    .....##
    .....##
    .....##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    ....##.
    ...###.
    ..####.
    .##.##.
    ##..##.
    #######
    ....##.
    ....##.
    ...####
    .......
    .......
    """,
    """
    .......
    #######
    ##.....
    ##.....
    ######.
    .....##
    .....##
    .....##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    ..####.
    .##....
    ##.....
    ######.
    ##...##
    ##...##
    ##...##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    #######
    ##...##
    .....##
    ....##.
    ...##..
    ...##..
    ..##...
    ..##...
    ..##...
    .......
    .......
    """,
    """
    .......
    .#####.
    ##...##
    ##...##
    .#####.
    ##...##
    ##...##
    ##...##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    .#####.
    ##...##
    ##...##
    ##...##
    .######
    .....##
    .....##
    ....##.
    .####..
    .......
    .......
    """,
)
BITMAP_ROWS, BITMAP_COLS = 12, 7


def digit_prototypes() -> torch.Tensor:
    """The ten bitmaps as a (10, 84) tensor of +1 (ink) / -1 (background)."""
    protos = []
    for digit, art in enumerate(DIGIT_BITMAPS):
        rows = [r.strip() for r in art.strip().splitlines()]
        if len(rows) != BITMAP_ROWS or any(len(r) != BITMAP_COLS or set(r) - {"#", "."}
                                           for r in rows):
            raise ValueError(f"bitmap of digit {digit} is not {BITMAP_ROWS} rows of "
                             f"{BITMAP_COLS} '#'/'.' characters")
        protos.append([1.0 if c == "#" else -1.0 for c in "".join(rows)])
    return torch.tensor(protos)
