"""``lenet5 plot``: pictures of a trained model, from its checkpoint and metrics log."""

from __future__ import annotations

import sys
from pathlib import Path

from ..io import ensure_writable_dir
from ..training import pick_device
from ..weights import resolve_checkpoint
from .common import (
    CHECKPOINT_HELP,
    add_data_args,
    add_device_arg,
    check_task,
    checkpoint_file,
    load_checkpoint_data,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot", help="draw training curves, predictions, confusion, misses, feature maps",
        description="Write PNGs about a trained model: training curves (from the metrics log "
        "beside the checkpoint), 64 test images with their predictions, the confusion matrix, "
        "the most confident misses, the C1-S4 feature maps of one test image and the learned "
        "C1 kernels. For a reader of whole numbers: test numbers with their reading and the "
        "output strip under each, the most confident misreadings, the C1 kernels. Needs "
        "matplotlib (pip install 'lenet5[plot]').")
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--log", metavar="PATH",
                   help="the metrics log (default: <checkpoint stem>.metrics.jsonl beside it)")
    p.add_argument("--out", metavar="DIR",
                   help="directory for the PNGs (default: <checkpoint stem>-plots beside it)")
    p.add_argument("--index", type=int, default=0,
                   help="test image whose feature maps are drawn; for a reader, the first "
                        "test number drawn (default: 0)")
    p.add_argument("--worst", type=int, metavar="N",
                   help="misses in the gallery of worst misses (default: 24; a reader's "
                        "misreadings: 8)")
    add_data_args(p, of_checkpoint=True)
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..plots import plot_run
    from ..reading.plots import plot_reading_run

    plotters = {"classify": (plot_run, 24), "read": (plot_reading_run, 8)}  # by the model's task
    ckpt = resolve_checkpoint(args.checkpoint)
    ckpt_path = checkpoint_file(args.checkpoint)
    log = Path(args.log) if args.log else ckpt_path.with_name(ckpt_path.stem + ".metrics.jsonl")
    if not log.is_file():
        if args.log:
            from ..errors import Lenet5Error

            raise Lenet5Error(f"metrics log {log} does not exist")
        print(f"lenet5: warning: no metrics log at {log}; training curves skipped", file=sys.stderr)
        log = None
    out = Path(args.out) if args.out else ckpt_path.with_name(ckpt_path.stem + "-plots")
    ensure_writable_dir(out)
    data = load_checkpoint_data(args, ckpt)
    plot, worst = plotters[check_task(ckpt.model_name, data)]
    written = plot(ckpt, data.test, out, log, index=args.index, device=pick_device(args.device),
                   worst=worst if args.worst is None else args.worst)
    for path in written.values():
        print(path)
    return 0
