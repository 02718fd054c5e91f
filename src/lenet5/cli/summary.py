"""``lenet5 summary``: the layer table of a model."""

from __future__ import annotations

from ..explain import explain, format_explanation
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
    p.add_argument("--explain", action="store_true",
                   help="work out every layer's shape arithmetic, receptive field, "
                   "parameters, MACs and activation memory")
    p.set_defaults(func=run, parser=p)


def run(args) -> int:
    if args.all == bool(args.model):
        args.parser.error("name one MODEL or pass --all")
    kwargs = {k: v for k, v in (("num_classes", args.num_classes),
                                ("in_channels", args.in_channels)) if v is not None}
    names = list_models() if args.all else [args.model]

    def render(name: str) -> str:
        if args.explain:
            return format_explanation(explain(name, **kwargs))
        return format_summary(summarize(name, **kwargs))

    print("\n\n".join(render(n) for n in names))
    return 0
