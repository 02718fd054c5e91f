"""``lenet5 eval``: the test-set metrics line of a saved model."""

from __future__ import annotations

import sys

from ..checkpoint import load_checkpoint
from ..evaluation import (
    confusion_matrix,
    evaluate,
    format_confusion,
    format_metrics,
    format_per_class,
    predict_logits,
)
from ..training import pick_device, reported_loss
from .common import add_data_args, add_device_arg, load_checkpoint_data


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on the test set",
                       description="Print the (test set) metrics line of a saved model.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint written by `lenet5 train`")
    p.add_argument("--model", help="refuse the checkpoint unless it is of this model")
    p.add_argument("--per-class", action="store_true",
                   help="also print accuracy, precision and recall per class")
    p.add_argument("--confusion", action="store_true",
                   help="also print the confusion matrix (rows: true class, columns: predicted)")
    add_data_args(p, of_checkpoint=True)
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    ckpt = load_checkpoint(args.checkpoint, expect_model=args.model)
    model = ckpt.build_model()
    config = ckpt.config
    data = load_checkpoint_data(args, ckpt)
    expected = ckpt.dataset.get("sha256")
    if expected and ckpt.dataset.get("name") == data.name and expected != data.content_hash:
        print(f"lenet5: warning: {data.name} here differs from the data the model was "
              "trained on (content hash)", file=sys.stderr)
    device = pick_device(args.device)
    loss_fn = reported_loss(config.get("loss", "cross_entropy"), **config.get("loss_args", {}))
    m = evaluate(model.to(device), data.test, ckpt.preprocess, loss_fn,
                 config.get("eval_batch_size", 256), device)
    print(format_metrics("test", m))
    if args.per_class or args.confusion:
        preds = predict_logits(model, data.test, ckpt.preprocess,
                               config.get("eval_batch_size", 256), device).argmax(1)
        cm = confusion_matrix(data.test.labels, preds, len(data.classes))
        if args.per_class:
            print()
            print(format_per_class(cm, data.classes))
        if args.confusion:
            print()
            print(format_confusion(cm, data.classes))
    return 0
