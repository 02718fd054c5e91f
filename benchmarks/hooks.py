"""What the training loop's hooks cost per step, against a training step, in one process.

    python benchmarks/hooks.py [--model modern] [--batch 512] [--threads 1]

Times the dispatch of ``on_batch`` and ``after_step`` to the hooks the model's recipe
turns on (the batch ramp, the weight average, the progress bar (off), the metrics log),
the weight average's update alone (the one hook that computes per step), and one training
step of the model (bf16 autocast, channels_last, fused Adam); best of 5 rounds each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lenet5.fastpath import autocast, to_channels_last
from lenet5.models import create_model
from lenet5.training import TrainConfig
from lenet5.training.callbacks import Loop
from lenet5.training.ema import WeightAverage
from lenet5.training.optim import build_optimizer
from lenet5.training.train import reporting_callbacks, training_callbacks


def best(fn, calls: int, rounds: int = 5) -> float:
    """Seconds per call, the best of ``rounds`` rounds of ``calls`` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        times.append((time.perf_counter() - start) / calls)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="modern")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = Path(tempfile.mkdtemp()) / "m.safetensors"
    cfg = TrainConfig.for_model(args.model, out=str(out), progress=False)
    net = to_channels_last(create_model(args.model))
    optimizer = build_optimizer(cfg.optimizer, net.parameters(), lr=cfg.lr, **cfg.optimizer_args)
    hooks = training_callbacks(cfg, net, optimizer) + reporting_callbacks(cfg)
    loop = Loop(cfg=cfg, data=None, model=net, net=net, optimizer=optimizer, schedule=None,
                loss_fn=F.cross_entropy, preprocess=None, device=torch.device("cpu"),
                train_split=None, watch_name="test", watch_split=None, batch=None, measure=None,
                log=print, is_main=True, evaluated=net)
    loop.epoch, loop.batch_size, loop.perm = cfg.epochs, cfg.batch_size, torch.arange(60000)
    loop.loss = torch.tensor(1.0)
    for cb in hooks:
        cb.on_epoch_start(loop)
    x = torch.randn(args.batch, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))

    def dispatch(i):
        loop.step = i % 100
        xs, ys = x, y
        for cb in hooks:
            xs, ys = cb.on_batch(loop, xs, ys)
        for cb in hooks:
            cb.after_step(loop)

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        with autocast(torch.device("cpu"), "bf16"):
            logits = net(x)
        F.cross_entropy(logits.float(), y).backward()  # outside autocast, as the loop does
        optimizer.step()

    average = next((cb for cb in hooks if isinstance(cb, WeightAverage)), None)
    step(0)
    d = best(dispatch, 2000)
    e = best(lambda i: average.update(2), 2000) if average is not None else 0.0
    s = best(step, 20)
    print(f"{args.model}, hooks: {', '.join(type(cb).__name__ for cb in hooks)}")
    print(f"hooks per step {d * 1e6:.1f} us, of which the weight average's update {e * 1e6:.1f} us; "
          f"a training step of {args.batch} images {s * 1e3:.2f} ms; the dispatch beyond the "
          f"update: {(d - e) / s * 100:.3f}% of a step")


if __name__ == "__main__":
    main()
