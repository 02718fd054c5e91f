"""``lenet5 train``: train a model, print the metrics lines, save a checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..data import load_dataset
from ..models import list_models
from ..training import TrainConfig, list_losses, list_optimizers, list_schedules, train
from .common import add_data_args, add_device_arg

DEFAULT_OUT = "runs/{model}.safetensors"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model and save a checkpoint",
        description="Train a model. Flags left out take the model's own recipe (see README): "
        "`lenet5 train` with no flags trains classic for 10 epochs on MNIST.")
    p.add_argument("--model", default="classic", help=f"one of: {', '.join(list_models())}")
    add_data_args(p)
    p.add_argument("--epochs", type=int, help="passes over the training set (recipe: 10)")
    p.add_argument("--batch-size", type=int, help="images per step (recipe)")
    p.add_argument("--optimizer", choices=list_optimizers(), help="optimizer (recipe)")
    p.add_argument("--lr", type=float, help="(peak) learning rate (recipe)")
    p.add_argument("--schedule", choices=list_schedules(), help="learning-rate schedule (recipe)")
    p.add_argument("--weight-decay", type=float, help="weight decay (recipe: 0)")
    p.add_argument("--momentum", type=float, help="SGD momentum (recipe: 0.9)")
    p.add_argument("--loss", choices=list_losses(), help="loss (recipe: cross_entropy; "
                   "lenet5-1998: map)")
    p.add_argument("--map-j", type=float, metavar="J",
                   help="the MAP loss's constant j > 0 (recipe of lenet5-1998: 0.1)")
    p.add_argument("--sdlm-mu", type=float, metavar="MU",
                   help="SDLM: mu in the step lr / (mu + h) (default 0.02)")
    p.add_argument("--hessian-samples", type=int, metavar="N",
                   help="SDLM: samples for the curvature estimate before each pass (default 500)")
    p.add_argument("--distort", action="store_true",
                   help="random affine distortions of the training images (translation, "
                        "scaling, squeezing, shearing), as in the paper's second experiment")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--val-split", type=float, default=0.0, metavar="FRACTION",
                   help="hold out this fraction of the training set for validation; the "
                        "per-epoch line is then for it and test is evaluated at the end")
    add_device_arg(p)
    p.add_argument("--out", metavar="PATH",
                   help=f"checkpoint path (default: {DEFAULT_OUT}); the per-epoch metrics "
                        "log goes beside it as <name>.metrics.jsonl")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = TrainConfig.for_model(
        args.model,
        dataset=args.dataset,
        data_dir=args.data_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        momentum=args.momentum,
        loss=args.loss,
        loss_args=_given(j=args.map_j),
        optimizer_args=_given(mu=args.sdlm_mu, hessian_samples=args.hessian_samples),
        distort=args.distort or None,
        seed=args.seed,
        device=args.device,
        val_split=args.val_split,
        out=args.out or DEFAULT_OUT.format(model=args.model),
        progress=False if args.no_progress else None,
    )
    data = load_dataset(cfg.dataset, cfg.data_dir).head(args.limit)
    result = train(cfg, data)
    print(f"saved {result.checkpoint}  (metrics log: {Path(cfg.log_path)})")
    return 0


def _given(**options):
    """The options the user gave (not None)."""
    return {k: v for k, v in options.items() if v is not None}
