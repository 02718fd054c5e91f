"""``lenet5 eval``: the test-set metrics line of a saved model."""

from __future__ import annotations

import sys

from ..evaluation import (
    confusion_matrix,
    evaluate,
    format_confusion,
    format_metrics,
    format_per_class,
    predict_logits,
)
from ..fastpath import accelerate
from ..training import pick_device, reported_loss
from ..weights import resolve_checkpoint
from .common import (
    CHECKPOINT_HELP,
    add_data_args,
    add_decode_args,
    add_device_arg,
    check_task,
    decode_options,
    load_checkpoint_data,
)


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on the test set",
                       description="Print the (test set) metrics line of a saved model.")
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--model", help="refuse the checkpoint unless it is of this model")
    p.add_argument("--per-class", action="store_true",
                   help="also print accuracy, precision and recall per class")
    p.add_argument("--confusion", action="store_true",
                   help="also print the confusion matrix (rows: true class, columns: predicted)")
    add_decode_args(p, "string readers: how the output strip is decoded")
    add_data_args(p, of_checkpoint=True)
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    ckpt = resolve_checkpoint(args.checkpoint, expect_model=args.model)
    model = accelerate(ckpt.build_model())  # the fast layers, as training evaluated it
    config = ckpt.config
    data = load_checkpoint_data(args, ckpt)
    expected = ckpt.dataset.get("sha256")
    if expected and ckpt.dataset.get("name") == data.name and expected != data.content_hash:
        print(f"lenet5: warning: {data.name} here differs from the data the model was "
              "trained on (content hash)", file=sys.stderr)
    device = pick_device(args.device)
    if check_task(ckpt.model_name, data) == "read":
        return _eval_reader(args, ckpt, model.to(device), data, device)
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


def _eval_reader(args, ckpt, model, data, device) -> int:
    """A string reader: exact match, CER and the accept rate at 1% error, and by length."""
    from ..reading.metrics import by_length, format_by_length, format_reading
    from ..reading.objectives import evaluate_reader

    m, readings = evaluate_reader(model, ckpt.preprocess, data.test,
                                  decode_options(args, model, ckpt.model_name), device=device)
    print(format_reading("test", m))
    if args.per_class or args.confusion:
        print("lenet5: note: --per-class and --confusion are for classifiers", file=sys.stderr)
    print()
    print(format_by_length(by_length(data.test.texts(), [r.text for r in readings],
                                     [r.confidence for r in readings])))
    return 0
