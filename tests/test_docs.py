"""The README and docs/: generated outputs current, links resolving, code that imports.

Every command output and results table in the docs is a cog block that
``docs/generate.py`` renders (cheap commands run in process; long runs come from
``docs/results/*.json``). A stale block fails here; ``python docs/generate.py`` fixes it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "benchmarks" / "README.md"]
# pages written at the same time on other branches: a link to one of them may be ahead of it
PENDING: set[str] = set()

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _generate():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_are_current(capsys):
    status = _generate().main(["--check"])
    out = capsys.readouterr().out
    assert status == 0, f"stale generated blocks (run: python docs/generate.py):\n{out}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", page.read_text()))}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            if dest.name not in PENDING:
                broken.append(f"{target}: no such file")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_slug_is_githubs():
    assert slug("lenet5-1998: the paper's SDLM with mini-batches") == \
        "lenet5-1998-the-papers-sdlm-with-mini-batches"
    assert slug("Shape arithmetic: `--explain`") == "shape-arithmetic---explain"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_compile_and_import(page):
    """Every ```python block parses, and every name it imports from lenet5 exists."""
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)
    for block in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lenet5"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(
                        f"{node.module}.{alias.name}"), f"{page.name}: {node.module}.{alias.name}"


def test_readme_is_for_users():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    for dev_path in ("../shared", "/work/", "issue "):
        assert dev_path not in text, dev_path


def test_no_machine_paths_in_docs():
    for page in PAGES:
        text = page.read_text()
        assert "/work/" not in text and "../shared" not in text, page.name
    for result in (DOCS / "results").glob("*.json"):
        assert "/work/" not in result.read_text(), result.name
