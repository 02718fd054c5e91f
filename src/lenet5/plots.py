"""Pictures of a trained model: training curves, predictions, confusion, misses, features.

Every function draws one PNG with matplotlib (the ``plot`` extra, imported only here and
only when a picture is drawn) on its own ``Figure``, without pyplot's global state, and
writes it atomically. :func:`plot_run` makes them all from a checkpoint, its metrics log
and the test set.

The layers shown are found by name, never by model: the submodules named ``c1``, ``s2``,
``c3`` and ``s4`` (LeNet's names, after the paper); a model without them shows its first
four convolution and pooling layers instead.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import Lenet5Error
from .io import atomic_write_bytes
from .models.features import FeatureLayer, feature_layers

MAX_MAPS = 16  # feature maps shown per layer
INK = "Greys"  # MNIST ink: 0 white, 255 black
MISS = "#d62728"
HIT = "#2ca02c"


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise Lenet5Error("plotting needs matplotlib: pip install 'lenet5[plot]'") from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


# --- the metrics log -------------------------------------------------------------------

def read_metrics_log(path: str | os.PathLike) -> list[dict]:
    """The per-epoch records `lenet5 train` wrote (one JSON object a line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise Lenet5Error(f"cannot read metrics log {path}: {e.strerror or e}") from None
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise Lenet5Error(f"{path}:{n}: not a JSON line of a metrics log") from None
        if not isinstance(rec, dict) or "epoch" not in rec or "train" not in rec:
            raise Lenet5Error(f"{path}:{n}: not a metrics record (no 'epoch' and 'train')")
        records.append(rec)
    if not records:
        raise Lenet5Error(f"metrics log {path} has no records")
    return records


def _accuracy(metrics: dict) -> float | None:
    """A classifier's accuracy, or a reader's exact match (the share of numbers read right)."""
    return metrics.get("acc", metrics.get("exact_match"))


def plot_curves(records: Sequence[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Loss and accuracy per epoch, training set against validation/test set."""
    fig = _figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    splits = [s for s in ("train", "val", "test") if any(s in r for r in records)]
    styles = {"train": dict(color="#1f77b4", marker="o"), "val": dict(color="#ff7f0e", marker="s"),
              "test": dict(color="#ff7f0e", marker="s")}
    for split in splits:
        rows = [r for r in records if split in r]
        label = {"train": "train", "val": "validation", "test": "test"}[split]
        lossed = [r for r in rows if "loss" in r[split]]
        ax_loss.plot([r["epoch"] for r in lossed], [r[split]["loss"] for r in lossed], label=label,
                     **styles[split])
        scored = [r for r in rows if _accuracy(r[split]) is not None]
        ax_acc.plot([r["epoch"] for r in scored], [100 * _accuracy(r[split]) for r in scored],
                    label=label, **styles[split])
    reader = any("exact_match" in r.get(s, {}) for r in records for s in splits)
    score = "exact match (%)" if reader else "accuracy (%)"
    for ax, what in ((ax_loss, "loss (mean per image)"), (ax_acc, score)):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.set_title("loss")
    ax_acc.set_title(score.removesuffix(" (%)"))
    last = records[-1]
    watch = next((s for s in ("val", "test") if s in last), None)
    if watch and _accuracy(last[watch]) is not None:
        acc = 100 * _accuracy(last[watch])
        ax_acc.annotate(f"{acc:.2f}%", (last["epoch"], acc),
                        textcoords="offset points", xytext=(-10, -16), ha="right")
    fig.suptitle(title or "training curves")
    return save_figure(fig, path)


# --- predictions on the test set ---------------------------------------------------------

def plot_prediction_grid(images: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor,
                         classes: Sequence[str], path: str | os.PathLike, title: str = "") -> Path:
    """The first 64 images in an 8x8 grid, titled 'true / predicted'; misses in red."""
    n = min(64, len(images))
    cols = 8
    rows = math.ceil(n / cols)
    fig = _figure(8.5, 1.2 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    misses = 0
    for i, ax in _cells(axes, n):
        ok = int(labels[i]) == int(preds[i])
        misses += not ok
        ax.imshow(_grey(images[i]), cmap=INK, vmin=0, vmax=255)
        ax.set_title(f"{classes[int(labels[i])]} → {classes[int(preds[i])]}", fontsize=10,
                     color=HIT if ok else MISS, fontweight="normal" if ok else "bold")
        for spine in ax.spines.values():
            spine.set_edgecolor(HIT if ok else MISS)
            spine.set_linewidth(1 if ok else 3)
    missed = f"{misses} missed, in red" if misses else "none missed"
    fig.suptitle(title or f"first {n} test images: true → predicted ({missed})")
    return save_figure(fig, path)


def plot_confusion(confusion: torch.Tensor, classes: Sequence[str], path: str | os.PathLike,
                   title: str = "") -> Path:
    """The confusion matrix with counts; colour on a log scale so the few misses show."""
    from matplotlib.colors import LogNorm

    cm = confusion.cpu().numpy().astype(np.int64)
    k = len(classes)
    size = max(5.0, 0.55 * k + 2)
    fig = _figure(size + 1, size)
    ax = fig.subplots()
    shown = np.where(cm > 0, cm, np.nan)
    im = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(2, cm.max())))
    fig.colorbar(im, ax=ax, label="images (log scale)", shrink=0.8)
    if k <= 30:
        for t in range(k):
            for p in range(k):
                if cm[t, p]:
                    dark = cm[t, p] > math.sqrt(max(cm.max(), 1))
                    ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=9,
                            color="white" if dark else ("black" if t == p else MISS))
    ax.set_xticks(range(k), labels=classes)
    ax.set_yticks(range(k), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total, correct = int(cm.sum()), int(np.trace(cm))
    ax.set_title(title or f"confusion matrix: {correct}/{total} right, {total - correct} missed")
    return save_figure(fig, path)


def plot_worst_misses(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor,
                      classes: Sequence[str], path: str | os.PathLike, count: int = 24,
                      indices: torch.Tensor | None = None, title: str = "") -> Path:
    """The misses the model was most sure of, most confident first."""
    preds = probs.argmax(1)
    wrong = torch.nonzero(preds != labels).reshape(-1)
    order = wrong[probs[wrong, preds[wrong]].argsort(descending=True)][:count]
    indices = torch.arange(len(labels)) if indices is None else indices
    n = len(order)
    cols = 8
    rows = max(1, math.ceil(n / cols))
    fig = _figure(9, 1.45 * rows + 0.7)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()
    for ax, i in zip(axes, order.tolist()):
        ax.set_axis_on()
        ax.imshow(_grey(images[i]), cmap=INK, vmin=0, vmax=255)
        p = int(preds[i])
        ax.set_title(f"#{int(indices[i])}\n{classes[int(labels[i])]} → {classes[p]} "
                     f"({probs[i, p]:.0%})", fontsize=9, color=MISS)
    if n == 0:
        axes[0].text(0.5, 0.5, "no misses", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(title or f"the {n} most confident misses (of {len(wrong)}): "
                          "test index, true → predicted (probability of the answer)")
    return save_figure(fig, path)


def _cells(axes, n: int):
    """The first ``n`` axes of a grid, without ticks, as (index, axes); the rest hidden."""
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
        else:
            yield i, ax


def _grey(image: torch.Tensor) -> np.ndarray:
    a = image.cpu().numpy()
    return a if a.ndim == 2 else a.mean(0)


# --- inside the model ------------------------------------------------------------------

def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The C1 convolution (by name), else the model's first Conv2d."""
    for layer in feature_layers(model):
        if isinstance(layer.module, nn.Conv2d):
            return layer.name, layer.module
    for qual, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return qual, module
    raise Lenet5Error("the model has no 2-d convolution whose kernels could be shown")


@torch.inference_mode()
def feature_maps(model: nn.Module, x: torch.Tensor) -> list[tuple[FeatureLayer, torch.Tensor]]:
    """Run ``x`` (one input, (1, C, H, W)) and catch each feature layer's output."""
    layers = feature_layers(model)
    caught: dict[str, torch.Tensor] = {}
    hooks = [layer.output.register_forward_hook(
        lambda _m, _i, out, name=layer.name: caught.__setitem__(name, out.detach().cpu()))
        for layer in layers]
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return [(layer, caught[layer.name][0]) for layer in layers
            if layer.name in caught and caught[layer.name].dim() == 4]


def plot_feature_maps(model: nn.Module, x: torch.Tensor, path: str | os.PathLike,
                      title: str = "") -> Path:
    """The input ``x`` (1, C, H, W), then one row per layer (C1, S2, C3, S4) of its maps."""
    maps = feature_maps(model, x)
    if not maps:
        raise Lenet5Error("found no convolution or pooling layers to show")
    cols = min(MAX_MAPS, max(m.shape[0] for _, m in maps))
    fig = _figure(0.85 * max(cols, 6) + 1.0, 1.2 * (len(maps) + 1) + 0.5)
    subfigs = fig.subfigures(len(maps) + 1, 1)
    ax = subfigs[0].subplots(1, 1)
    ax.imshow(x[0].float().mean(0).cpu().numpy(), cmap=INK)
    ax.set_xticks([])
    ax.set_yticks([])
    subfigs[0].suptitle(f"input: {' x '.join(map(str, x.shape[1:]))} after preprocessing",
                        fontsize=10)
    for sub, (layer, m) in zip(subfigs[1:], maps):
        n = min(MAX_MAPS, m.shape[0])
        axes = np.atleast_1d(sub.subplots(1, cols)).reshape(-1)
        lim = float(m[:n].abs().max()) or 1.0
        for i, ax in _cells(axes, n):
            ax.imshow(m[i].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xlabel(str(i), fontsize=8, labelpad=1)
        more = f", first {n} of {m.shape[0]}" if m.shape[0] > n else ""
        sub.suptitle(f"{layer.label} ({layer.name}): {m.shape[0]} maps of "
                     f"{m.shape[1]}x{m.shape[2]}{more}", fontsize=10)
    fig.suptitle(title or "feature maps (red positive, blue negative)", fontsize=12)
    return save_figure(fig, path)


def plot_kernels(model: nn.Module, path: str | os.PathLike, title: str = "") -> Path:
    """The learned kernels of the first convolution (C1), one panel per output map."""
    name, conv = first_conv(model)
    w = conv.weight.detach().cpu().float()  # (out, in, k, k)
    kernels = w.mean(1) if w.shape[1] > 1 else w[:, 0]
    n = min(len(kernels), 64)
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    fig = _figure(1.5 * cols + 1.5, 1.6 * rows + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    lim = float(kernels[:n].abs().max()) or 1.0
    im = None
    for i, ax in _cells(axes, n):
        im = ax.imshow(kernels[i].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"map {i}", fontsize=9)
    fig.colorbar(im, ax=list(axes), label="weight", shrink=0.8)
    k = "x".join(map(str, w.shape[2:]))
    avg = f", averaged over {w.shape[1]} input channels" if w.shape[1] > 1 else ""
    fig.suptitle(title or f"learned {k} kernels of {name}{avg}")
    return save_figure(fig, path)


# --- everything for one run ------------------------------------------------------------

FILES = {
    "curves": "curves.png",
    "predictions": "predictions.png",
    "confusion": "confusion.png",
    "worst_misses": "worst_misses.png",
    "feature_maps": "feature_maps.png",
    "kernels": "c1_kernels.png",
}


def plot_run(ckpt, test, out_dir: str | os.PathLike, log_path: str | os.PathLike | None = None,
             index: int = 0, device: torch.device | str = "cpu", worst: int = 24,
             title: str = "") -> dict[str, Path]:
    """Every picture of a checkpoint (:class:`~lenet5.checkpoint.Checkpoint`) on ``test``
    (a :class:`~lenet5.data.Split`): the curves need ``log_path``; returns name -> file."""
    from .data import to_input
    from .evaluation import confusion_matrix, predict_logits

    if not 0 <= index < len(test):
        raise Lenet5Error(f"--index must be in 0..{len(test) - 1}, not {index}")
    _figure(1, 1)  # fail now, clearly, if matplotlib is missing
    out = Path(out_dir)
    model = ckpt.build_model().to(device)
    name = title or ckpt.model_name
    written = {}
    if log_path is not None:
        written["curves"] = plot_curves(read_metrics_log(log_path), out / FILES["curves"],
                                        f"{name}: training curves")
    probs = torch.softmax(predict_logits(model, test, ckpt.preprocess, device=device), 1)
    preds = probs.argmax(1)
    classes = ckpt.class_names(probs.shape[1])
    written["predictions"] = plot_prediction_grid(test.images, test.labels, preds, classes,
                                                  out / FILES["predictions"])
    cm = confusion_matrix(test.labels, preds, len(classes))
    written["confusion"] = plot_confusion(cm, classes, out / FILES["confusion"],
                                          f"{name}: confusion matrix, {int(cm.trace())}/"
                                          f"{int(cm.sum())} right")
    written["worst_misses"] = plot_worst_misses(test.images, test.labels, probs, classes,
                                                out / FILES["worst_misses"], worst)
    x = to_input(test.images[index:index + 1], ckpt.preprocess, device)
    written["feature_maps"] = plot_feature_maps(
        model, x, out / FILES["feature_maps"],
        f"{name}: feature maps of test image #{index} (true {classes[int(test.labels[index])]}, "
        f"predicted {classes[int(preds[index])]}); red positive, blue negative")
    written["kernels"] = plot_kernels(model, out / FILES["kernels"])
    return written
