"""Layer tables of a model: output shapes, parameters and MACs per image.

torchinfo walks the model with a dummy input and records every layer; we render its
records as our own table so the columns can grow (connections, receptive fields).
"""

from __future__ import annotations

from dataclasses import dataclass

import torchinfo
from torch import nn

from .connections import connections
from .models import create_model, input_size_for


@dataclass(frozen=True)
class LayerRow:
    name: str  # e.g. "features.0"
    kind: str  # e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int
    trainable: int
    macs: int  # multiply-accumulates per image
    connections: int = 0  # inputs (and bias) its units see, as the paper counts (connections.py)


@dataclass(frozen=True)
class ModelSummary:
    model_name: str
    input_size: tuple[int, int, int]
    rows: list[LayerRow]

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def total_connections(self) -> int:
        return sum(r.connections for r in self.rows)

    @property
    def size_mb(self) -> float:
        """Parameter memory as float32, in MB of 2**20 bytes (as torchsummary reports it)."""
        return self.total_params * 4 / 2**20


def summarize(model_name: str, model: nn.Module | None = None, **model_args) -> ModelSummary:
    model = model if model is not None else create_model(model_name, **model_args)
    input_size = input_size_for(model_name, model_args.get("in_channels"))
    stats = torchinfo.summary(model, input_size=(1, *input_size), verbose=0, device="cpu",
                              col_names=("output_size", "num_params", "mult_adds"))
    rows = []
    for info in stats.summary_list:
        if not info.is_leaf_layer:
            continue
        links = connections(info.module, tuple(info.input_size[1:]), tuple(info.output_size[1:]))
        # torchinfo knows torch's own layers; of one it does not know (the paper's trainable
        # subsampling, its RBF output) it counts each parameter once, not once per output:
        # there every connection is one multiply-accumulate.
        known = type(info.module).__module__.startswith("torch.")
        rows.append(LayerRow(
            name=info.var_name if info.parent_info is None else _qualified_name(info),
            kind=info.class_name,
            output_shape=tuple(info.output_size[1:]),
            params=info.num_params,
            trainable=info.trainable_params,
            macs=info.macs if known else max(info.macs, links),
            connections=links,
        ))
    return ModelSummary(model_name, input_size, rows)


def _qualified_name(info) -> str:
    parts = []
    while info is not None and info.parent_info is not None:
        parts.append(info.var_name)
        info = info.parent_info
    return ".".join(reversed(parts))


def format_summary(s: ModelSummary) -> str:
    header = ("Layer", "Type", "Output shape", "Params", "MACs", "Connections")
    body = [(r.name, r.kind, str([-1, *r.output_shape]), f"{r.params:,}", f"{r.macs:,}",
             f"{r.connections:,}") for r in s.rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    align = ["<", "<", "<", ">", ">", ">"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    rule = "-" * len(line(header))
    out = [f"{s.model_name}  (input {' x '.join(map(str, s.input_size))})", rule,
           line(header), rule, *map(line, body), rule,
           f"Total params:        {s.total_params:,}",
           f"Trainable params:    {s.trainable_params:,}",
           f"Non-trainable:       {s.total_params - s.trainable_params:,}",
           f"MACs per image:      {s.total_macs:,}  (a bias counts as one)",
           f"Connections:         {s.total_connections:,}  (as the paper counts them)",
           f"Params size (MB):    {s.size_mb:.2f}",
           rule]
    return "\n".join(out)
