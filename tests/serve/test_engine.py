"""The model side of serve: feature layers found by name, batching on the event loop."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import lenet5
from lenet5.errors import Lenet5Error
from lenet5.serve.engine import Batcher, ServedModel, load_models
from lenet5.serve.engine import feature_outputs as feature_layers


def test_feature_layers_are_found_by_name_not_model():
    for name in ("classic", "modern", "sigmoid", "modern-c5conv"):
        layers = feature_layers(lenet5.create_model(name))
        assert list(layers) == ["C1", "S2", "C3", "S4"], name
    model = lenet5.create_model("classic")
    assert layers_are(feature_layers(model), model.features, {"C1": "act1", "S2": "s2", "C3": "act3"})
    assert feature_layers(lenet5.create_model("alexnet")) == {}


def layers_are(found, parent, expected) -> bool:
    """C1 and C3 are shown after their activation, as the paper shows them."""
    return all(found[k] is getattr(parent, v) for k, v in expected.items())


def test_one_turn_of_the_loop_is_one_forward_pass(checkpoint, mnist):
    model = ServedModel("m", checkpoint)
    batcher = Batcher(model)
    images = mnist.test.images[:12].numpy()
    calls = []
    real = model.predict_batch
    model.predict_batch = lambda d, a=False: calls.append(len(d)) or real(d, a)

    async def ask():
        futures = [batcher.predict(img, activations=(i == 3)) for i, img in enumerate(images)]
        futures[5].cancel()  # a client that went away
        return await asyncio.gather(*[f for i, f in enumerate(futures) if i != 5])

    answers = asyncio.run(ask())
    assert calls == [11]
    alone = [real(img[None])[0] for i, img in enumerate(images) if i != 5]
    assert [a.digit for a in answers] == [a.digit for a in alone]
    np.testing.assert_allclose([a.probabilities for a in answers], [a.probabilities for a in alone],
                               atol=1e-6)
    assert [bool(a.activations) for a in answers] == [i == 3 for i in range(12) if i != 5]
    with pytest.raises(Lenet5Error, match="28x28 uint8"):
        batcher.predict(images[0].astype(np.float32))


def test_model_ids_are_file_stems_made_unique(checkpoint, tmp_path):
    other = tmp_path / "classic.safetensors"
    other.write_bytes(checkpoint.read_bytes())
    assert list(load_models([checkpoint, other, checkpoint])) == ["classic", "classic-2", "classic-3"]
    with pytest.raises(Lenet5Error, match="at least one checkpoint"):
        load_models([])
    with pytest.raises(Lenet5Error, match="does not exist"):
        load_models([tmp_path / "nope.safetensors"])


def test_serve_reads_digits_as_predict_does_and_keeps_every_map(checkpoint, mnist):
    """The server holds `lenet5 predict`'s Predictor: the same probabilities; a batch
    longer than the predictor's chunk still gets one feature map per digit."""
    from lenet5.predict import Predictor

    served = ServedModel("classic", checkpoint)
    served.predictor.batch_size = 4  # 10 digits: three forward passes
    digits = mnist.test.images[:10].numpy()
    results = served.predict_batch(digits, activations=True)
    expected = Predictor.from_checkpoint(checkpoint).probabilities(digits).numpy()
    np.testing.assert_allclose([r.probabilities for r in results], expected, atol=1e-6)
    assert [r.digit for r in results] == list(expected.argmax(1))
    for r in results:
        assert r.activations["C1"].shape == (6, 28, 28) and r.activations["S4"].shape == (16, 5, 5)
    first = served.predict_batch(digits[:1], activations=True)[0]
    np.testing.assert_allclose(results[0].activations["C3"], first.activations["C3"], atol=1e-5)
    np.testing.assert_allclose(results[9].activations["C3"],  # from the last chunk
                               served.predict(digits[9], activations=True).activations["C3"],
                               atol=1e-5)


def write_bad(source, path, change: str):
    """``source`` with its metadata or weights broken as a careless or hostile file might be;
    written with safetensors directly, so that no check on saving stands in the way."""
    import json

    from safetensors.torch import save_file

    from lenet5.checkpoint import load_checkpoint

    ckpt = load_checkpoint(source)
    meta, state = ckpt.metadata(), {k: v.clone().contiguous() for k, v in ckpt.state_dict.items()}
    if change == "metrics as a list":
        meta["metrics"] = [0.9, 0.8]
    elif change == "accuracy as text":
        meta["metrics"] = {"test": {"acc": "very good"}}
    elif change == "std 0":
        meta["preprocess"]["std"] = 0.0
    elif change == "negative padding":
        meta["preprocess"]["pad"] = -3
    elif change == "NaN weights":
        next(iter(state.values())).fill_(float("nan"))
    save_file(state, str(path), metadata={"lenet5": json.dumps(meta)})
    return path


@pytest.mark.parametrize("change", ["metrics as a list", "accuracy as text", "std 0",
                                    "negative padding", "NaN weights"])
def test_a_bad_checkpoint_is_refused_in_one_line_or_served_without_a_500(checkpoint, tmp_path, change):
    from fastapi.testclient import TestClient

    from lenet5.serve import create_app

    bad = write_bad(checkpoint, tmp_path / "bad.safetensors", change)
    try:
        app = create_app([bad])
    except Lenet5Error as e:  # refused at start-up, in one line
        assert "\n" not in str(e) and "bad.safetensors" in str(e)
        return
    with TestClient(app, raise_server_exceptions=False) as c:
        models = c.get("/api/models")
        assert models.status_code == 200 and models.json()["models"][0]["test_accuracy"] is None
        r = c.post("/api/predict", json={"pixels": [[0] * 28] * 28})
        assert r.status_code == 200 and np.isfinite(r.json()["probabilities"]).all()


def test_serve_refuses_a_bad_checkpoint_or_flag_in_one_line(checkpoint, tmp_path, capsys):
    from lenet5.cli import main

    bad = write_bad(checkpoint, tmp_path / "nan.safetensors", "NaN weights")
    assert main(["serve", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lenet5: error: ") and "nan.safetensors" in err and "\n" not in err
    assert main(["serve", str(checkpoint), "--max-connections", "0"]) == 1
    assert capsys.readouterr().err.strip() == "lenet5: error: --max-connections must be positive, not 0"
