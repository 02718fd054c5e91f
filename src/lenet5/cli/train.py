"""``lenet5 train``: train a model, print the metrics lines, save a checkpoint."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..data import Dataset, load_dataset
from ..data.distort import Distortion
from ..errors import Lenet5Error
from ..fastpath import PRECISIONS
from ..models import list_models
from ..training import (
    TrainConfig,
    list_augmentations,
    list_losses,
    list_optimizers,
    list_schedules,
    train,
)
from ..training.augment import parse_augment
from ..training.resume import CHANGEABLE, load_state, prepare_resume, state_path_for
from ..training.tensorboard import default_dir, summary_writer
from ..training.train import check_out
from .common import (
    add_data_args,
    add_device_arg,
    check_task,
    default_dataset,
    image_format_for,
)

DEFAULT_OUT = "runs/{model}.safetensors"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model and save a checkpoint",
        description="Train a model. Flags left out take the model's own recipe (docs/recipes.md): "
        "`lenet5 train` with no flags trains classic for 10 epochs on MNIST.")
    p.add_argument("--model", help=f"one of: {', '.join(list_models())} (default: classic)")
    add_data_args(p, by_task=True)
    p.add_argument("--epochs", type=int, help="passes over the training set (recipe: 10)")
    p.add_argument("--batch-size", type=int, help="images per step (recipe)")
    p.add_argument("--double-batch-from", type=int, metavar="EPOCH",
                   help="from this epoch on, steps take twice --batch-size images; the schedule "
                        "and --ema go by images seen (recipe of modern: 3; 0: never)")
    p.add_argument("--optimizer", choices=list_optimizers(), help="optimizer (recipe)")
    p.add_argument("--lr", type=float, help="(peak) learning rate (recipe)")
    p.add_argument("--schedule", choices=list_schedules(), help="learning-rate schedule (recipe)")
    p.add_argument("--weight-decay", type=float, help="weight decay (recipe: 0)")
    p.add_argument("--momentum", type=float, help="SGD momentum (recipe: 0.9)")
    p.add_argument("--loss", choices=list_losses(), help="loss (recipe: cross_entropy; "
                   "lenet5-1998: map)")
    p.add_argument("--label-smoothing", type=float, metavar="EPS",
                   help="cross entropy: label smoothing in [0, 1) (recipe of modern: 0.1; "
                        "the reported loss is always without it)")
    p.add_argument("--map-j", type=float, metavar="J",
                   help="the MAP loss's constant j > 0 (recipe of lenet5-1998: 0.1)")
    p.add_argument("--sdlm-mu", type=float, metavar="MU",
                   help="SDLM: mu in the step lr / (mu + h) (default 0.02)")
    p.add_argument("--hessian-samples", type=int, metavar="N",
                   help="SDLM: samples for the curvature estimate before each pass (default 500)")
    p.add_argument("--hessian-every", type=int, metavar="STEPS",
                   help="SDLM: estimate the curvature again every STEPS steps within a pass "
                        "(default: once per pass, as the paper; recipe of lenet5-1998: 250)")
    p.add_argument("--distort", type=float, nargs="?", const=Distortion().fraction,
                   metavar="FRACTION",
                   help="random affine distortions of the training images (translation, "
                        "scaling, squeezing, shearing), as in the paper's second experiment, "
                        "of FRACTION of them (default 0.9: the paper's 540,000 distorted "
                        "beside the 60,000 originals)")
    p.add_argument("--augment", action="append", metavar="NAME[:KEY=VALUE,...]",
                   help="an augmentation of the training batches, with its options (repeat the "
                        f"flag for several): one of {', '.join(list_augmentations())}")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights (decay per step, "
                        "e.g. 0.99), evaluate and save it; 0: off (recipe of modern: 0.98)")
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--val-split", type=float, metavar="FRACTION",
                   help="hold out this fraction of the training set for validation; the "
                        "per-epoch line is then for it and test is evaluated at the end")
    p.add_argument("--train-eval", action="store_true",
                   help="after each epoch evaluate the whole training set for the (train set) "
                        "line (exact, one more pass) instead of averaging over the epoch's batches")
    add_device_arg(p)
    p.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): bf16 autocast for training on CPUs with native bf16, "
                        "else fp32; evaluation is always fp32")
    p.add_argument("--out", metavar="PATH",
                   help=f"checkpoint path (default: {DEFAULT_OUT}); the per-epoch metrics "
                        "log goes beside it as <name>.metrics.jsonl and <name>.metrics.csv")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the checkpoint at --out even if it was trained with other "
                        "settings or data (without it, only a run with the same ones may)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", nargs="?", const="", metavar="DIR",
                   help="write TensorBoard event files to DIR (default: runs/tensorboard/<name>): "
                        "loss, accuracy, learning rate and batch size per epoch, the settings "
                        "with the final metrics, the misclassified digits (needs the "
                        "tensorboard extra)")
    p.add_argument("--resume", metavar="PATH",
                   help="carry on an interrupted run from its last completed epoch: its "
                        "<name>.state.pt (or its checkpoint path); the run keeps its settings")
    p.set_defaults(func=run)


def run(args) -> int:
    augment = dict(parse_augment(spec) for spec in args.augment) if args.augment else None
    if args.resume:
        given = {**vars(args), "progress": False if args.no_progress else None,
                 "device": None if args.device == "auto" else args.device, "augment": augment}
        cfg, data, state = prepare_resume(args.resume, given, limit=args.limit)
        if cfg.tensorboard == "":
            cfg = dataclasses.replace(cfg, tensorboard=str(default_dir(cfg.out)))
        check_out(cfg.out, create=False)
        check_replace(cfg, data, args.overwrite)
        print(f"resuming {cfg.model} after epoch {state['epoch']} of {cfg.epochs}")
        return _train(cfg, data, state)
    out = args.out or DEFAULT_OUT.format(model=args.model or "classic")
    cfg = TrainConfig.for_model(
        args.model or "classic",
        dataset=args.dataset or default_dataset(args.model or "classic"),
        data_dir=args.data_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        double_batch_from=args.double_batch_from,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        momentum=args.momentum,
        loss=args.loss,
        loss_args=_given(j=args.map_j, label_smoothing=args.label_smoothing),
        optimizer_args=_given(mu=args.sdlm_mu, hessian_samples=args.hessian_samples,
                              refresh_every=args.hessian_every),
        distort=args.distort,
        augment=augment,
        ema=args.ema,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        val_split=args.val_split,
        train_eval=args.train_eval or None,
        out=out,
        progress=False if args.no_progress else None,
        tensorboard=str(default_dir(out)) if args.tensorboard == "" else args.tensorboard,
    )
    check_out(cfg.out, create=False)  # before the data is loaded (or downloaded)
    if cfg.tensorboard is not None:
        summary_writer()  # the package is there
    if (unfinished := state_path_for(cfg.out)).is_file():
        print(f"lenet5: note: a new run replaces the unfinished one in {unfinished} (to carry "
              f"that one on instead: lenet5 train --resume {unfinished})", file=sys.stderr)
    data = load_dataset(cfg.dataset, cfg.data_dir,
                        image_format=image_format_for(cfg.model)).head(args.limit)
    check_task(cfg.model, data)
    check_replace(cfg, data, args.overwrite)
    return _train(cfg, data)


# What a checkpoint's recorded config may differ in and still be "the same run": where it
# ran, read its data and showed its progress, and where it was written.
NOT_THE_RUN = (*CHANGEABLE, "out", "world_size")


def check_replace(cfg: TrainConfig, data: Dataset, overwrite: bool) -> None:
    """Refuse to replace a checkpoint at ``cfg.out`` that was trained with other settings
    or data (unless ``overwrite``). A checkpoint of the same settings and data may be
    replaced: the run gives the same model again (same machine), so nothing is lost."""
    out = Path(cfg.out)
    if overwrite or not out.exists():
        return
    how = "pass --overwrite to replace it, or --out another path"
    try:
        saved = load_checkpoint(out)
    except Lenet5Error:
        raise Lenet5Error(f"{out} exists and is not a lenet5 checkpoint; {how}") from None
    defaults = TrainConfig(model=cfg.model).to_dict()  # what older checkpoints did not record
    wanted = cfg.to_dict()
    differs = [f"{k} {saved.config.get(k, defaults.get(k))!r}, not {wanted[k]!r}"
               for k in wanted if k not in NOT_THE_RUN
               and saved.config.get(k, defaults.get(k)) != wanted[k]]
    if saved.dataset.get("limit") != data.limit:
        differs.append(f"other data (limit {saved.dataset.get('limit')}, not {data.limit})")
    elif saved.dataset.get("sha256") != data.content_hash:
        differs.append("other data (content hash)")
    if differs:
        raise Lenet5Error(f"{out} holds a model trained differently ({'; '.join(differs[:3])}"
                          f"{'; ...' if len(differs) > 3 else ''}); {how}")


def _train(cfg: TrainConfig, data, state: dict | None = None) -> int:
    try:
        result = train(cfg, data, resume=state)
    except KeyboardInterrupt:  # Ctrl-C: the state of the last completed epoch is on disk
        state_path = state_path_for(cfg.out)
        if not state_path.is_file():
            print("lenet5: interrupted before training started; nothing to resume", file=sys.stderr)
        else:
            done = load_state(state_path)["epoch"]
            print(f"lenet5: interrupted; the run as it was after epoch {done} of {cfg.epochs} "
                  f"is saved in {state_path}\nresume with: lenet5 train --resume {state_path}",
                  file=sys.stderr)
        return 130
    if result.checkpoint is not None:  # under torchrun, only rank 0 writes it
        print(f"saved {result.checkpoint}  (metrics log: {Path(cfg.log_path)})")
    return 0


def _given(**options):
    """The options the user gave (not None)."""
    return {k: v for k, v in options.items() if v is not None}
