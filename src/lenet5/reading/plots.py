"""Pictures of a string reader: test numbers with their reading and the output strip.

As the paper's SDNN figures draw a line being read (LeCun et al. 1998, section VII), each
number is shown with its truth and its reading, and under it the output strip: one cell
per position of LeNet-5's window along the line, centred under the window's centre,
labelled with the class it finds most likely (a digit, or a dot for "none") and shaded by
that class's probability. Matplotlib, through :mod:`lenet5.plots` (its own ``Figure`` per
picture, atomic writes).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..data.strings import Strings
from ..errors import Lenet5Error
from ..plots import HIT, MISS, _figure, plot_curves, plot_kernels, read_metrics_log, save_figure
from .read import Reading, output_strip, read_strips

FILES = {
    "curves": "curves.png",
    "readings": "readings.png",
    "misreadings": "misreadings.png",
    "kernels": "c1_kernels.png",
}
PX = 0.04  # inches per pixel of the line: the images at their shape, the strips under them
ROW = 32 + 10 + 16  # a number's row, in pixels: its image, its strip, its title


def _strip_axes(ax, probs: torch.Tensor, centres: torch.Tensor, step: float, blank: int) -> None:
    """One number's output strip on ``ax``, in the line image's columns: digits in orange,
    darker the more probable; "none" in grey, a dot."""
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    digit, none = colormaps["Oranges"], colormaps["Greys"]
    size = max(4.0, min(8.0, step * PX * 72 * 0.75))
    best, label = probs.max(1)
    for p, k, c in zip(best.tolist(), label.tolist(), centres.tolist()):
        face = none(0.1 + 0.3 * p) if k == blank else digit(0.25 + 0.75 * p)
        ax.add_patch(Rectangle((c - step / 2, 0), step, 1, facecolor=face, edgecolor="white",
                               linewidth=0.4))
        ax.text(c, 0.5, "·" if k == blank else str(k), ha="center", va="center", fontsize=size,
                color="white" if k != blank and p > 0.55 else "black",
                fontweight="normal" if k == blank else "bold")
    ax.set_ylim(0, 1)


def plot_strings(model, pre, strings: Strings, readings: list[Reading], indices: list[int],
                 path: str | os.PathLike, title: str = "") -> Path:
    """The strings ``indices`` of ``strings``, each titled '#index: truth → reading'
    (misreadings in red), its output strip under it, every row at one scale."""
    widest = max((int(strings.widths[i]) for i in indices), default=64)
    lo, hi = -6, max(widest, 120) + 6  # room for the strip's first and last cells
    left, right, top = 0.25, 0.25, 0.45  # inches
    width, height = (hi - lo) * PX + left + right, max(1, len(indices)) * ROW * PX + top + 0.1
    fig = _figure(width, height)
    fig.set_layout_engine("none")

    def axes(y_px: float, h_px: float):  # y_px from the top of the rows, in line pixels
        return fig.add_axes(((left) / width, 1 - (top + (y_px + h_px) * PX) / height,
                             (hi - lo) * PX / width, h_px * PX / height))
    if not indices:
        fig.text(0.5, 0.5, "nothing to show", ha="center", va="center")
    for row, i in enumerate(indices):
        w = int(strings.widths[i])
        line = strings.images[i, :, :w]
        probs, centres = output_strip(model, pre, line)
        ax_img, ax_strip = axes(row * ROW + 16, 32), axes(row * ROW + 16 + 32, 10)
        ax_img.imshow(line.numpy(), cmap="gray", vmin=0, vmax=255, aspect="auto",
                      extent=(-0.5, w - 0.5, 31.5, -0.5), interpolation="nearest")
        truth, read = strings.text(i), readings[i].text
        ok = truth == read
        ax_img.set_title(f"#{i}: {truth} → {read or '(nothing)'}  (confidence "
                         f"{readings[i].confidence:.0%})", fontsize=9, loc="left", pad=3,
                         color=HIT if ok else MISS, fontweight="normal" if ok else "bold")
        step = float(centres[1] - centres[0]) if len(centres) > 1 else 4.0
        _strip_axes(ax_strip, probs, centres, step, model.blank)
        for ax in (ax_img, ax_strip):
            ax.set_xlim(lo, hi)
            ax.set_axis_off()
    fig.suptitle(title or "test numbers: truth → reading, and the output strip "
                          "(best class at each window; darker: more probable)",
                 fontsize=9, y=1 - 0.08 / height, va="top", wrap=True)
    return save_figure(fig, path)


def plot_reading_run(ckpt, test: Strings, out_dir: str | os.PathLike,
                     log_path: str | os.PathLike | None = None, index: int = 0,
                     device: torch.device | str = "cpu", worst: int = 8, count: int = 8,
                     title: str = "") -> dict[str, Path]:
    """Every picture of a reader's checkpoint on the test numbers ``test``: ``count``
    numbers from ``index`` with their strips, the ``worst`` most confident misreadings, the
    C1 kernels, the curves if ``log_path``; returns name -> file."""
    if not 0 <= index < len(test):
        raise Lenet5Error(f"--index must be in 0..{len(test) - 1}, not {index}")
    _figure(1, 1)  # fail now, clearly, if matplotlib is missing
    out = Path(out_dir)
    model = ckpt.build_model()
    pre = ckpt.preprocess
    name = title or ckpt.model_name
    readings = read_strips(model.to(device), pre, test.images, test.widths, device=device)
    model.cpu()
    written = {}
    if log_path is not None:
        written["curves"] = plot_curves(read_metrics_log(log_path), out / FILES["curves"],
                                        f"{name}: training curves")
    shown = list(range(index, min(len(test), index + count)))
    right = sum(readings[i].text == test.text(i) for i in range(len(test)))
    written["readings"] = plot_strings(
        model, pre, test, readings, shown, out / FILES["readings"],
        f"{name}: test numbers, truth → reading ({right}/{len(test)} read right), and the "
        "output strip:\nthe best class at each window (a dot: none), darker more probable")
    wrong = [i for i in range(len(test)) if readings[i].text != test.text(i)]
    wrong.sort(key=lambda i: -readings[i].confidence)
    written["misreadings"] = plot_strings(
        model, pre, test, readings, wrong[:worst], out / FILES["misreadings"],
        f"{name}: the {min(worst, len(wrong))} most confident misreadings (of {len(wrong)})")
    written["kernels"] = plot_kernels(model, out / FILES["kernels"])
    return written
