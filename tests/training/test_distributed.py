"""Training on several processes: the sharding arithmetic, and a real 2-process torchrun
run on loopback that must match the single-process run with twice the batch."""

import json
import socket
import subprocess
import sys

import pytest
import torch

from lenet5.checkpoint import load_checkpoint
from lenet5.training import TrainConfig, train
from lenet5.training.distributed import Context


@pytest.mark.parametrize("n", [10, 11, 13])
def test_shards_cover_the_permutation_as_one_big_batch_would(n):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    world, batch = 3, 2
    shards = [Context(r, world, torch.device("cpu")).shard(perm) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every rank takes the same number of steps
    assert set(torch.cat(shards).tolist()) == set(range(n))
    for step in range(n // (batch * world)):  # step s of all ranks = a 3x batch of one
        together = torch.cat([s[step * batch:(step + 1) * batch] for s in shards])
        alone = perm[step * batch * world:(step + 1) * batch * world]
        assert sorted(together.tolist()) == sorted(alone.tolist())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_with_twice_the_batch(mnist, mnist_dir, tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "lenet5", "train", "--model", "modern", "--data-dir", str(mnist_dir),
           "--limit", "400", "--epochs", "2", "--batch-size", "32", "--device", "cpu",
           "--out", str(out), "--no-progress", "--precision", "fp32"]  # bf16 rounds per batch
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                       env={**__import__("os").environ, "GLOO_SOCKET_IFNAME": "lo"})
    # on failure: the workers' own error lines first (torchrun's summary comes last)
    causes = [x for x in r.stderr.splitlines()
              if any(w in x for w in ("Error", "error:", "terminate", "what()", "Abort"))]
    assert r.returncode == 0, "\n".join(causes[:40]) + "\n...\n" + r.stderr[-1500:]
    lines = r.stdout.splitlines()
    assert sum(x.startswith("(test set)  epoch: 2") for x in lines) == 1  # rank 0 only
    assert sum(x.startswith("saved ") for x in lines) == 1

    cfg = TrainConfig.for_model("modern", epochs=2, batch_size=64, progress=False,
                                precision="fp32")
    single = train(cfg, mnist.head(400), log=lambda s: None)
    ckpt = load_checkpoint(out)  # loads in a single process: no DDP "module." prefixes
    assert ckpt.config["world_size"] == 2
    test = ckpt.metrics["test"]
    assert test["total"] == 400  # the sharded evaluation counted every image once
    assert abs(test["correct"] - single.test.correct) <= 3
    assert test["loss"] == pytest.approx(single.test.loss, rel=1e-3)
    model = ckpt.build_model()
    for k, v in single.model.state_dict().items():
        assert torch.allclose(model.state_dict()[k], v, atol=1e-4), k
    log = [json.loads(x) for x in out.with_name("ddp.metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
