import json
import time

import pytest
import torch

from lenet5.bench import reference
from lenet5.bench.core import METRICS, BenchConfig, _batch_text, format_table, run_bench, run_by_turns
from lenet5.errors import Lenet5Error
from lenet5.evaluation import evaluate
from lenet5.fastpath import accelerate, is_accelerated, to_channels_last
from lenet5.models import create_model, get_model_entry

from ..conftest import run_cli


def test_bench_quick_runs_end_to_end_and_both_paths_learn(mnist_dir):
    """--quick trains enough that its figures mean something: both paths reach 90% (the
    project's recipe needs more than a few dozen steps; the table says what ran)."""
    proc = run_cli("bench", "--quick", "--json", "--data-dir", str(mnist_dir), timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["config"]["train_images"] == 10_000 and result["config"]["epochs"] == 2
    for path in ("reference", "project"):
        r = result[path]
        for key in ("epoch_seconds", "train_images_per_s", "eval_images_per_s", "peak_rss_mb",
                    "predict_p50_ms"):
            assert isinstance(r[key], float) and r[key] > 0, (path, key)
        assert r["test_acc"] > 0.9, (path, r["test_acc"])
        assert r["time_to_target_s"] > 0  # the quick target, 90%, is reached
        assert 50 < r["peak_rss_mb"] < 4096  # MiB: a Python process with torch loaded
    for key, *_ in METRICS:
        assert key in result["ratio"]
    assert result["ratio"]["epoch_seconds"] == pytest.approx(
        result["project"]["epoch_seconds"] / result["reference"]["epoch_seconds"])
    table = format_table(result)
    assert "| training epoch |" in table and "predict one image, p50" in table
    assert "after 2 epochs |" in table and "time to 90.0% test acc" in table
    assert "--quick: the first 10,000 training images for 2 epochs" in table
    # the default model is modern, whose recipe doubles its batch from epoch 3
    assert "images per step: reference 64, project 256, 512 from epoch 3" in table
    assert result["project"]["epoch_seconds_mean"] > 0
    assert result["machine"]["cores"] >= 1


def test_fast_evaluation_matches_the_reference_evaluation(mnist):
    data = mnist.head(1500)
    pre = get_model_entry("modern").preprocess
    torch.manual_seed(0)
    plain = create_model("modern")
    fast = accelerate(create_model("modern"))
    fast.load_state_dict(plain.state_dict())
    loss, correct, total = reference.evaluate(plain, reference.test_loader(data.test, pre),
                                              torch.device("cpu"))
    m = evaluate(fast, data.test, pre, torch.nn.functional.cross_entropy)
    assert m.total == total == 1500
    assert m.correct == correct
    assert m.loss == pytest.approx(loss, rel=1e-5)


def test_reference_dataset_transform_matches_the_batched_transform(mnist):
    from lenet5.data import to_input

    pre = get_model_entry("classic").preprocess
    ds = reference.PerSampleDataset(mnist.test, pre)
    batch = to_input(mnist.test.images[:8], pre)
    for i in range(8):
        assert torch.allclose(ds[i][0], batch[i], atol=1e-6)
        assert ds[i][1] == int(mnist.test.labels[i])


def test_reference_trains_the_plain_model_the_project_the_accelerated_one():
    torch.manual_seed(0)
    stock = create_model("modern").eval()  # what the reference path trains
    assert not is_accelerated(stock)
    assert all(type(m).__module__.startswith("torch.nn") for m in stock.modules() if m is not stock)
    torch.manual_seed(0)
    project = accelerate(create_model("modern")).eval()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(project(x.contiguous(memory_format=torch.channels_last)),
                           to_channels_last(stock)(x))


def test_a_bad_model_or_epoch_count_fails_before_any_run(mnist_dir):
    with pytest.raises(Lenet5Error, match="unknown model 'nope'"):
        BenchConfig(model="nope", quick=True).resolved()
    with pytest.raises(Lenet5Error, match="--epochs must be positive"):
        BenchConfig(epochs=0).resolved()
    with pytest.raises(Lenet5Error, match="needs 3x224x224 input .*--dataset imagefolder"):
        run_bench(BenchConfig(model="alexnet", quick=True, limit=100, data_dir=str(mnist_dir)))


def test_the_two_training_runs_take_turns_epoch_by_epoch(mnist_dir):
    cfg = BenchConfig(model="modern", epochs=2, limit=300, data_dir=str(mnist_dir),
                      quick=True).resolved()
    started = time.time()
    reference_run, project_run = run_by_turns(cfg, "cpu")
    elapsed = time.time() - started
    assert [r["epoch"] for r in reference_run.records] == [1, 2]
    assert [r["epoch"] for r in project_run.records] == [1, 2]
    ref, proj = reference_run.records, project_run.records
    # each epoch of one path ends between the other path's epochs
    assert ref[0]["ended"] < proj[0]["ended"] < ref[1]["ended"] < proj[1]["ended"]
    for run in (reference_run, project_run):
        assert run.done["peak_rss_mb"] > 0
        assert 0 < run.records[0]["active"] < run.records[1]["active"] <= run.active
    # the waits are not counted: together the two runs were active for less than it took
    assert reference_run.active + project_run.active <= elapsed


def test_a_failing_training_run_is_a_one_line_error(tmp_path):
    cfg = BenchConfig(model="modern", epochs=1, data_dir=str(tmp_path / "nothing-here"),
                      quick=True).resolved()
    with pytest.raises(Lenet5Error, match="bench: the reference training run failed"):
        run_by_turns(cfg, "cpu")


def test_the_table_names_each_recipes_images_per_step():
    assert _batch_text("modern") == "256, 512 from epoch 3"
    assert _batch_text("classic") == "256"  # no ramp in its recipe
