"""Exporting a model to ONNX or TorchScript, checked against PyTorch before the file is kept.

    >>> from lenet5.export import export_checkpoint
    >>> report = export_checkpoint("runs/classic.safetensors", "onnx", data=mnist)

What the exported graph takes (``input=``):

- ``"uint8"`` (the default): raw images as the dataset holds them, uint8 ``(N, C, H, W)``
  with 0 = background and 255 = ink, ``N`` dynamic (MNIST: ``(N, 1, 28, 28)``). The
  model's preprocessing (pad, then ``(x / 255 - mean) / std``, see ``Preprocess``) is part
  of the graph, so a user outside Python feeds pixels and reads logits.
- ``"float"``: the bare network on its preprocessed float32 input ``(N, C, H, W)``
  (LeNets: ``(N, 1, 32, 32)``), for users who do the preprocessing themselves.

Input name ``images`` (uint8) or ``input`` (float), output ``logits`` float32
``(N, num_classes)``; the ONNX file's metadata (``metadata_props``) and the TorchScript
file's extra file ``lenet5.json`` say the same, with the preprocessing.

Every export is verified before anything is written: the exported graph and the PyTorch
model run on the same images (the whole test set from the CLI), the largest logit
difference must be at most ``atol`` (1e-4) and the argmax must agree on every image.
Only then are the bytes written, atomically; a failed check writes nothing.

ONNX uses ``torch.onnx.export(..., dynamo=True)`` (the torch.export-based exporter, the
default since PyTorch 2.9; the TorchScript-based one is deprecated) and ONNX Runtime to
check, both from the ``onnx`` extra: ``pip install "lenet5[onnx]"``. TorchScript uses
``torch.jit.trace``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .checkpoint import Checkpoint, load_checkpoint
from .data import Dataset, to_input
from .errors import Lenet5Error
from .io import atomic_write_bytes
from .models import Preprocess

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # format -> default file suffix
INPUTS = ("uint8", "float")
ATOL = 1e-4  # largest logit difference an export may have from PyTorch
BATCH_SIZE = 256


class WithPreprocess(nn.Module):
    """A model that takes uint8 images: ``data.to_input`` (pad, scale, shift) in the graph.

    The operations are those of ``to_input`` in the same order, so the float input the
    model sees is bit for bit the one PyTorch training and evaluation give it.
    """

    def __init__(self, model: nn.Module, pre: Preprocess):
        super().__init__()
        self.model = model
        self.pad = pre.pad
        self.scale = 1.0 / (255.0 * pre.std)
        self.shift = pre.mean / pre.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(torch.float32)
        if self.pad:
            x = nn.functional.pad(x, (self.pad,) * 4)
        return self.model(x * self.scale - self.shift)


@dataclass(frozen=True)
class Parity:
    """How an exported graph's logits compare with PyTorch's on the same images."""

    images: int
    max_abs_diff: float
    argmax_agree: int
    atol: float = ATOL

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.atol and self.argmax_agree == self.images

    def describe(self) -> str:
        return (f"max |logit diff| {self.max_abs_diff:.2e} (limit {self.atol:.0e}), "
                f"argmax agrees on {self.argmax_agree}/{self.images}")


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    input: str
    input_name: str
    input_shape: tuple  # ("batch", C, H, W)
    input_dtype: str
    num_classes: int
    size_bytes: int
    parity: Parity

    def describe(self) -> str:
        shape = ", ".join(str(d) for d in self.input_shape)
        return (f"exported {self.path} ({self.format}, {self.size_bytes / 1e6:.2f} MB): "
                f"input {self.input_name!r} {self.input_dtype} [{shape}] -> 'logits' "
                f"float32 [batch, {self.num_classes}]")


# ---------------------------------------------------------------------------- formats

def _need_onnx() -> None:
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise Lenet5Error(f"ONNX export needs {module}: pip install \"lenet5[onnx]\"") from None


@contextlib.contextmanager
def _quiet():
    """The exporter's chatter (warnings about torchvision ops, deprecations) is not ours."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _to_onnx(graph: nn.Module, example: torch.Tensor, input_name: str,
             metadata: dict[str, str]) -> bytes:
    _need_onnx()
    import onnx

    batch = torch.export.Dim("batch", min=1)
    with _quiet():
        try:
            program = torch.onnx.export(graph, (example,), dynamo=True, verbose=False,
                                        input_names=[input_name], output_names=["logits"],
                                        dynamic_shapes=({0: batch},))
        except Exception as e:  # the exporter raises many kinds; say which model and why
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise Lenet5Error(f"ONNX export failed: {first}") from None
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


def _to_torchscript(graph: nn.Module, example: torch.Tensor, input_name: str,
                    metadata: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with _quiet():  # torch.jit is deprecated since PyTorch 2.13, and says so on every call
        traced = torch.jit.trace(graph, example)
        torch.jit.save(traced, buf, _extra_files={"lenet5.json": json.dumps(metadata)})
    return buf.getvalue()


Runner = Callable[[torch.Tensor], torch.Tensor]


def onnx_runner(data: bytes | str | Path, threads: int | None = None) -> Runner:
    """``fn(batch) -> logits`` running an ONNX model (bytes or a file) in ONNX Runtime."""
    _need_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = data if isinstance(data, bytes) else str(data)
    try:
        session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise Lenet5Error(f"ONNX Runtime cannot load the model: {str(e).strip()[:200]}") from None
    name = session.get_inputs()[0].name

    def run(batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: batch.numpy()})[0])

    return run


def torchscript_runner(data: bytes | str | Path) -> Runner:
    """``fn(batch) -> logits`` running a TorchScript model (bytes or a file)."""
    with _quiet():
        module = torch.jit.load(io.BytesIO(data) if isinstance(data, bytes) else str(data),
                                map_location="cpu")
    module.eval()

    @torch.inference_mode()
    def run(batch: torch.Tensor) -> torch.Tensor:
        return module(batch)

    return run


_EXPORTERS = {"onnx": (_to_onnx, onnx_runner), "torchscript": (_to_torchscript, torchscript_runner)}


# ---------------------------------------------------------------------------- export

def _batched(fn: Runner, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(inputs[i:i + batch_size]).float()
                      for i in range(0, len(inputs), batch_size)])


@torch.inference_mode()
def reference_logits(model: nn.Module, images: torch.Tensor, pre: Preprocess,
                     batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """PyTorch's logits for uint8 ``images``: what training and ``lenet5 eval`` compute."""
    model.eval()
    return _batched(lambda b: model(to_input(b, pre)), images, batch_size)


def compare(exported: torch.Tensor, reference: torch.Tensor, atol: float = ATOL) -> Parity:
    if exported.shape != reference.shape:
        raise Lenet5Error(f"exported model gives logits of shape {tuple(exported.shape)}, "
                          f"PyTorch {tuple(reference.shape)}")
    diff = (exported - reference).abs().max().item() if len(reference) else 0.0
    agree = int((exported.argmax(1) == reference.argmax(1)).sum())
    return Parity(images=len(reference), max_abs_diff=diff, argmax_agree=agree, atol=atol)


def export_model(model: nn.Module, out: str | Path, fmt: str, *, preprocess: Preprocess,
                 check_images: torch.Tensor, input: str = "uint8", atol: float = ATOL,
                 batch_size: int = BATCH_SIZE, metadata: dict | None = None) -> ExportReport:
    """Export ``model`` to ``out`` as ``fmt`` (``onnx`` or ``torchscript``), after checking
    it against PyTorch on ``check_images`` (uint8, ``(N, C, H, W)`` or ``(N, H, W)``).

    Raises ``Lenet5Error`` (and writes nothing) when the check fails. The model is moved
    to the CPU and put in eval mode.
    """
    if fmt not in FORMATS:
        raise Lenet5Error(f"unknown export format {fmt!r}; use {' or '.join(FORMATS)}")
    if input not in INPUTS:
        raise Lenet5Error(f"unknown export input {input!r}; use {' or '.join(INPUTS)}")
    if check_images.dtype != torch.uint8 or check_images.dim() not in (3, 4) or not len(check_images):
        raise Lenet5Error("check images must be a non-empty uint8 batch (N, H, W) or (N, C, H, W)")
    images = check_images if check_images.dim() == 4 else check_images.unsqueeze(1)
    model = model.cpu().eval()
    try:
        reference = reference_logits(model, images, preprocess, batch_size)
    except RuntimeError as e:
        raise Lenet5Error(f"the model cannot take images of shape {tuple(images.shape[1:])}: "
                          f"{str(e).strip().splitlines()[0]}") from None

    if input == "uint8":
        graph, inputs, input_name = WithPreprocess(model, preprocess).eval(), images, "images"
    else:
        graph, input_name = model, "input"
        inputs = torch.cat([to_input(images[i:i + batch_size], preprocess)
                            for i in range(0, len(images), batch_size)])
    meta = {"lenet5_version": __version__, "input": input_name, "input_dtype": str(inputs.dtype),
            "input_shape": json.dumps(["batch", *inputs.shape[1:]]), "output": "logits",
            "preprocess": json.dumps(preprocess.to_dict()),
            "preprocess_in_graph": json.dumps(input == "uint8"),
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}}

    to_bytes, runner = _EXPORTERS[fmt]
    data = to_bytes(graph, inputs[:2].clone(), input_name, meta)
    parity = compare(_batched(runner(data), inputs, batch_size), reference, atol)
    if not parity.ok:
        raise Lenet5Error(f"{fmt} export does not match PyTorch: {parity.describe()}; "
                          f"nothing written to {out}")
    path = atomic_write_bytes(out, data)
    return ExportReport(path=path, format=fmt, input=input, input_name=input_name,
                        input_shape=("batch", *inputs.shape[1:]), input_dtype=str(inputs.dtype)
                        .removeprefix("torch."), num_classes=reference.shape[1],
                        size_bytes=len(data), parity=parity)


def default_out(checkpoint: str | Path, fmt: str) -> Path:
    """``runs/classic.safetensors`` -> ``runs/classic.onnx`` / ``runs/classic.pt``."""
    return Path(checkpoint).with_suffix(FORMATS[fmt])


def export_checkpoint(checkpoint: str | Path | Checkpoint, fmt: str, data: Dataset,
                      out: str | Path | None = None, **kwargs) -> ExportReport:
    """Export a saved model, checked on the whole test split of ``data``."""
    if out is None:
        if isinstance(checkpoint, Checkpoint):
            raise Lenet5Error("export_checkpoint: give out= when passing a Checkpoint object")
        out = default_out(checkpoint, fmt)
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    meta = {"model": ckpt.model_name, "model_args": ckpt.model_args, "classes": list(data.classes)}
    return export_model(ckpt.build_model(), out, fmt, preprocess=ckpt.preprocess,
                        check_images=data.test.images, metadata=meta, **kwargs)


# ---------------------------------------------------------------------------- throughput

def onnx_throughput(source: str | Path | Checkpoint | nn.Module, images: torch.Tensor,
                    batch_size: int = BATCH_SIZE, *, preprocess: Preprocess | None = None,
                    threads: int | None = None, repeats: int = 3) -> float:
    """Images per second of ONNX Runtime evaluating ``images``, best of ``repeats`` passes.

    ``source``: an ``.onnx`` file written by ``lenet5 export`` (either input kind), a
    checkpoint (path or ``Checkpoint``), or a model (then give ``preprocess``); checkpoints
    and models are exported in memory with the preprocessing in the graph. ``images`` are
    uint8 as the dataset holds them (``(N, H, W)`` or ``(N, C, H, W)``); the timed work
    starts from them, so it is comparable with PyTorch's ``evaluate`` (which also does
    ``to_input`` per batch). ``threads``: ONNX Runtime's intra-op threads (None: its
    default, one per physical core).
    """
    images = images if images.dim() == 4 else images.unsqueeze(1)
    if isinstance(source, str | Path) and Path(source).suffix == ".onnx":
        _need_onnx()
        import onnx

        props = {p.key: p.value for p in onnx.load(str(source), load_external_data=False)
                 .metadata_props}
        run = onnx_runner(source, threads)
        if props.get("preprocess_in_graph") == "false":  # exported with --input float
            bare, pre = run, Preprocess.from_dict(json.loads(props["preprocess"]))

            def run(batch: torch.Tensor) -> torch.Tensor:
                return bare(to_input(batch, pre))
    else:
        if isinstance(source, nn.Module):
            if preprocess is None:
                raise Lenet5Error("onnx_throughput: give preprocess= with a model")
            model, pre = source, preprocess
        else:
            ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
            model, pre = ckpt.build_model(), ckpt.preprocess
        graph = WithPreprocess(model.cpu().eval(), pre).eval()
        run = onnx_runner(_to_onnx(graph, images[:2].clone(), "images", {}), threads)
    run(images[:batch_size])  # warm-up: first-run allocations are not throughput
    best = float("inf")
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        for i in range(0, len(images), batch_size):
            np.asarray(run(images[i:i + batch_size]))
        best = min(best, time.perf_counter() - started)
    return len(images) / best
