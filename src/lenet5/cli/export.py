"""``lenet5 export``: a checkpoint as ONNX or TorchScript, checked against PyTorch on the
whole test set before the file is written."""

from __future__ import annotations

from ..export import ATOL, FORMATS, INPUTS, default_out, export_checkpoint
from ..weights import resolve_checkpoint
from .common import CHECKPOINT_HELP, add_data_args, checkpoint_file, load_checkpoint_data


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export a checkpoint to ONNX or TorchScript",
        description="Export a checkpoint to ONNX (needs the onnx extra) or TorchScript. The "
        "exported model is run on the whole test set and compared with PyTorch; the file is "
        f"written only if no logit differs by more than {ATOL:g} and every argmax agrees.")
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--format", required=True, choices=list(FORMATS), help="onnx or torchscript")
    p.add_argument("--out", metavar="PATH",
                   help="output file (default: the checkpoint's path with .onnx or .pt)")
    p.add_argument("--input", default="uint8", choices=INPUTS,
                   help="uint8 (default): the graph takes raw images (N, C, 28, 28), 0 = "
                        "background, and does the preprocessing itself; float: the bare "
                        "network on preprocessed input (N, C, 32, 32)")
    add_data_args(p, of_checkpoint=True)
    p.set_defaults(func=run)


def run(args) -> int:
    ckpt = resolve_checkpoint(args.checkpoint)  # a bad checkpoint fails before the data loads
    data = load_checkpoint_data(args, ckpt)
    out = args.out or default_out(checkpoint_file(args.checkpoint), args.format)
    report = export_checkpoint(ckpt, args.format, data, out, input=args.input)
    print(report.describe())
    print(f"parity with PyTorch on {report.parity.images} test images: {report.parity.describe()}")
    return 0
