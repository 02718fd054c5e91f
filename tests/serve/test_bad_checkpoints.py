"""`lenet5 serve` refuses a malformed or corrupt checkpoint at start, with one line, rather
than starting and answering 500 to every request."""

from __future__ import annotations

import pytest

from lenet5.errors import Lenet5Error
from lenet5.serve import create_app
from lenet5.serve.engine import ServedModel
from tests.conftest import run_cli
from tests.test_checkpoint import BAD_METADATA, make_checkpoint, read_raw, tamper, write_raw


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("good") / "classic.safetensors")


def corrupt(good, out):
    """``good`` with one byte of its weights flipped: same size, same metadata."""
    data = bytearray(good.read_bytes())
    data[-100] ^= 0x10
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("keys,value,match", BAD_METADATA,
                         ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD_METADATA])
def test_engine_never_accepts_malformed_metadata(good, tmp_path, keys, value, match):
    bad = tamper(good, tmp_path / "bad.safetensors", keys, value)
    with pytest.raises(Lenet5Error, match=match):
        ServedModel("bad", bad)


def test_engine_never_accepts_bad_weights(good, tmp_path):
    meta, tensors = read_raw(good)
    nan = tensors["features.c1.weight"].clone()
    nan[0] = float("nan")
    for bad, match in [(corrupt(good, tmp_path / "flipped.safetensors"), "do not match the SHA-256"),
                       (write_raw(tmp_path / "nan.safetensors", meta,
                                  {**tensors, "features.c1.weight": nan}), "NaN or infinite")]:
        with pytest.raises(Lenet5Error, match=match):
            ServedModel("bad", bad)
        with pytest.raises(Lenet5Error, match=match):  # beside a good one, too
            create_app([good, bad])


def test_serve_exits_1_with_one_line(good, tmp_path):
    bad = tamper(good, tmp_path / "std0.safetensors", "preprocess.std", 0)
    r = run_cli("serve", str(good), str(bad), "--port", "0", timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"lenet5: error: {bad}: bad checkpoint metadata: preprocess.std must be a number from "
        "0.0001 to 10,000, not 0"]
