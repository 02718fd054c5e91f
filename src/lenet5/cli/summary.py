"""``lenet5 summary``: the layer table of a model."""

from __future__ import annotations

from ..models import list_models
from ..summary import format_summary, summarize


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print a model's layers, shapes, parameters, MACs",
                       description="Layer table of a model: output shapes, parameter counts, "
                       "multiply-accumulates per image, totals and size.")
    p.add_argument("model", nargs="?", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--all", action="store_true", help="every registered model")
    p.add_argument("--num-classes", type=int, help="number of output classes")
    p.add_argument("--in-channels", type=int, help="input channels")
    p.set_defaults(func=run, parser=p)


def run(args) -> int:
    if args.all == bool(args.model):
        args.parser.error("name one MODEL or pass --all")
    kwargs = {k: v for k, v in (("num_classes", args.num_classes),
                                ("in_channels", args.in_channels)) if v is not None}
    names = list_models() if args.all else [args.model]
    print("\n\n".join(format_summary(summarize(n, **kwargs)) for n in names))
    return 0
