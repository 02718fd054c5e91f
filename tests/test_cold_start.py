"""What keeps ``lenet5 predict`` quick to start: ``import lenet5`` imports no PyTorch until a
function needs it, a command imports only its own module (and no scipy: the photo stages'
filters are ``lenet5.data.filters``), and the parser of one command is the full parser's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lenet5
from lenet5.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
DIGIT = ROOT / "docs" / "digit.png"


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_lenet5_waits_for_torch():
    loaded = json.loads(_python(
        "import json, sys, lenet5, lenet5.cli; print(json.dumps(sorted(sys.modules)))"))
    assert "torch" not in loaded and "scipy" not in loaded


def test_predict_imports_only_its_command():
    code = (f"import json, sys; from lenet5.cli import main; main(['predict', {str(DIGIT)!r}]); "
            "print(json.dumps(sorted(sys.modules)))")
    out = _python(code).splitlines()
    assert out[0].startswith(str(DIGIT)) and "digit: " in out[0]
    loaded = set(json.loads(out[-1]))
    assert "torch" in loaded and "lenet5.cli.predict" in loaded
    others = {f"lenet5.cli.{c}" for c in COMMANDS if c != "predict"}
    assert not loaded & (others | {"scipy", "matplotlib", "filelock", "lenet5.summary", "lenet5.serve"})


def test_public_functions_on_first_use():
    assert set(lenet5.__all__) <= set(dir(lenet5))
    assert "modern" in lenet5.list_models()
    assert lenet5.create_model is lenet5.weights.create_model  # submodules by attribute, too
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lenet5.nope  # noqa: B018


@pytest.mark.parametrize("command", COMMANDS)
def test_one_command_parser_is_the_full_parsers(command):
    def subparser(parser):
        return parser._subparsers._group_actions[0].choices[command]

    full, alone = subparser(build_parser()), subparser(build_parser([command]))
    assert alone.format_help() == full.format_help()
    assert alone.prog == full.prog == f"lenet5 {command}"
