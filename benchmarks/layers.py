"""The fast layers of ``lenet5.fastpath`` against the stock ones, in one process.

    python benchmarks/layers.py [--batch 512] [--threads 2] [--rounds 10]

Each comparison alternates the stock and the fast variant (A, B, A, B, ... ``--rounds``
rounds of ``--reps`` calls) and keeps each one's best round, so a neighbour slowing the
machine for a while slows both alike; the ratio is what to read (benchmarks/README.md):

- S2 max pooling (C1's maps, NHWC, bf16 as under autocast): ``nn.MaxPool2d`` against
  ``fastpath.MaxPool2d``, forward alone and forward + backward;
- C1 + S2 in training (bf16 autocast, NHWC): the fast layers one by one in an
  ``nn.Sequential`` against ``fastpath.Sequential``, which runs them as one convolution
  over the input's 2x2 phases;
- C3's input gradient (NHWC, bf16): oneDNN's NHWC backward-data kernel against the one
  ``fastpath.conv2d`` takes;
- the moving average of the weights: ``AveragedModel.update_parameters`` against
  ``training.ema.WeightAverage``'s;
- a whole training step of ``modern`` (bf16 autocast, channels_last, fused Adam): the
  plain model (``create_model``) against the same after ``fastpath.accelerate``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lenet5.fastpath import Conv2d, MaxPool2d, Sequential, accelerate, autocast, conv2d, to_channels_last
from lenet5.models import create_model
from lenet5.training.ema import WeightAverage
from lenet5.training.optim import build_optimizer

CL = torch.channels_last


def interleaved(variants: dict, rounds: int, reps: int) -> dict[str, float]:
    """Best milliseconds per call of each variant, the variants taking turns."""
    best = dict.fromkeys(variants, float("inf"))
    for fn in variants.values():
        fn()  # warm-up: oneDNN primitives, allocator
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / reps * 1e3)
    return best


def report(title: str, times: dict[str, float]) -> None:
    (a, ta), (b, tb) = times.items()
    print(f"{title:42s} {a} {ta:7.3f} ms   {b} {tb:7.3f} ms   {ta / tb:5.2f}x")


def pooling(batch: int, rounds: int, reps: int) -> None:
    x = torch.randn(batch, 6, 28, 28).to(torch.bfloat16).contiguous(memory_format=CL)
    x.requires_grad_()
    g = torch.randn(batch, 6, 14, 14).to(torch.bfloat16).contiguous(memory_format=CL)
    stock, fast = nn.MaxPool2d(2, 2), MaxPool2d(2, 2)
    report("S2 max pooling, forward", interleaved(
        {"stock": lambda: stock(x), "fast": lambda: fast(x)}, rounds, reps))
    report("S2 max pooling, forward + backward", interleaved(
        {"stock": lambda: torch.autograd.grad(stock(x), x, g),
         "fast": lambda: torch.autograd.grad(fast(x), x, g)}, rounds, reps))


def first_conv_and_pooling(batch: int, rounds: int, reps: int) -> None:
    x = torch.randn(batch, 1, 32, 32).contiguous(memory_format=CL)
    g = torch.randn(batch, 6, 14, 14).to(torch.bfloat16).contiguous(memory_format=CL)
    fused = Sequential(Conv2d(1, 6, 5), MaxPool2d(2, 2)).to(memory_format=CL)
    layers = nn.Sequential(*fused)

    def step(model):
        def run():
            with autocast(torch.device("cpu"), "bf16"):
                y = model(x)
            y.backward(g)
        return run
    report("C1 + S2, forward + backward", interleaved(
        {"layers": step(layers), "fused": step(fused)}, rounds, reps))


def c3_input_gradient(batch: int, rounds: int, reps: int) -> None:
    x = torch.randn(batch, 6, 14, 14).to(torch.bfloat16).contiguous(memory_format=CL)
    x.requires_grad_()
    w = torch.randn(16, 6, 5, 5).to(torch.bfloat16).contiguous(memory_format=CL)
    g = torch.randn(batch, 16, 10, 10).to(torch.bfloat16).contiguous(memory_format=CL)
    stock_y, fast_y = F.conv2d(x, w), conv2d(x, w)
    report("C3 input gradient", interleaved(
        {"stock": lambda: torch.autograd.grad(stock_y, x, g, retain_graph=True),
         "fast": lambda: torch.autograd.grad(fast_y, x, g, retain_graph=True)}, rounds, reps))


def weight_averages(rounds: int, reps: int) -> None:
    model = accelerate(create_model("modern"))
    stock = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.98), use_buffers=True)
    ours = WeightAverage(model, 0.98)
    report("moving average of the weights, one update", interleaved(
        {"stock": lambda: stock.update_parameters(model),
         "fast": lambda: ours.update()}, rounds, reps * 10))


def training_steps(batch: int, rounds: int, reps: int) -> None:
    images = torch.randn(batch, 1, 32, 32).contiguous(memory_format=CL)
    labels = torch.randint(0, 10, (batch,))

    def stepper(model: nn.Module):
        optimizer = build_optimizer("adam", model.parameters(), lr=1e-3)

        def step():
            with autocast(torch.device("cpu"), "bf16"):
                out = model(images)
            loss = F.cross_entropy(out.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    torch.manual_seed(0)
    stock = stepper(to_channels_last(create_model("modern")))
    torch.manual_seed(0)
    fast = stepper(accelerate(create_model("modern")))
    report(f"modern, one training step (batch {batch})",
           interleaved({"stock": stock, "fast": fast}, rounds, reps))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    if min(args.batch, args.rounds, args.reps) < 1 or (args.threads or 1) < 1:
        p.error("--batch, --threads, --rounds and --reps must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, {torch.get_num_threads()} threads, best of {args.rounds} "
          f"interleaved rounds; ratio of the two last")
    pooling(args.batch, args.rounds, args.reps)
    first_conv_and_pooling(args.batch, args.rounds, args.reps)
    c3_input_gradient(args.batch, args.rounds, args.reps)
    weight_averages(args.rounds, args.reps)
    training_steps(args.batch, args.rounds, args.reps)


if __name__ == "__main__":
    main()
