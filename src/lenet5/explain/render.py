"""The walk as ``lenet5 summary --explain`` prints it: the worked arithmetic of each layer,
then a table of receptive fields, parameters, MACs and activation memory."""

from __future__ import annotations

import math

from .notation import dims, once
from .walk import Explanation


def format_explanation(e: Explanation) -> str:
    """The worked arithmetic, one line per layer, then a table of fields, costs, totals."""
    names = [s.name for s in e.steps]
    width = max(len(n) for n in ["input", *names])
    lines = [f"{e.model_name}  (input {dims(e.input_size)}): the shape of every layer",
             "  out = (in - kernel + 2*padding) / stride + 1; a conv's depth is its number of"
             " kernels", ""]
    for s in e.steps:
        lines.append(f"{s.name:<{width}}  {s.text}")
    header = ("Layer", "Output", "RF", "Jump", "Start", "Params", "MACs", "Act. bytes")
    rows = [("input", dims(e.input_size, "x"), *_field([1] * (len(e.input_size) - 1),
             [1] * (len(e.input_size) - 1), [0] * (len(e.input_size) - 1), False, False),
             "", "", f"{4 * math.prod(e.input_size):,}")]
    for s in e.steps:
        rows.append((s.name, dims(s.output_shape, "x"),
                     *_field(s.rf, s.jump, s.start, s.whole_input, s.approximate),
                     f"{s.params:,}", f"{s.macs:,}", f"{s.act_bytes:,}"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    align = ["<", "<", ">", ">", ">", ">", ">", ">"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    rule = "-" * len(line(header))
    lines += ["", rule, line(header), rule, *map(line, rows), rule,
              f"Total params:        {e.total_params:,}  ({e.trainable_params:,} trainable)",
              f"MACs per image:      {e.total_macs:,}  (a bias counts as one)",
              f"Activations / image: {e.total_act_bytes:,} bytes = "
              f"{e.total_act_bytes / 2**10:,.1f} KiB  (float32, every layer's output summed)"]
    if e.other_params:
        lines.append(f"  of which {e.other_params:,} params belong to no walked layer")
    lines += [rule,
              "RF: input pixels a unit sees per side (* = the whole input); Jump: input pixels",
              "between neighbouring units; Start: input pixel where unit 0's field begins",
              "(negative: in the padding)."]
    if any(s.approximate for s in e.steps):
        lines.append("~: uneven adaptive-pool windows; the largest window and mean stride used.")
    if any(s.rf is None for s in e.steps):
        lines.append("?: after a shape change with no formula the field is not known.")
    return "\n".join(lines)


def _field(rf, jump, start, whole, approx):
    if rf is None:
        return ("?", "?", "?")
    mark = "~" if approx else ""
    return (mark + once(rf) + ("*" if whole else ""), mark + once(jump), once(start))
