"""Regenerate every command output and results table shown in README.md and docs/*.md.

    python docs/generate.py           # rewrite the generated blocks in place
    python docs/generate.py --check   # exit 1 if any block is stale (tests/test_docs.py)

The blocks are cog blocks (https://cog.readthedocs.io), hidden in HTML comments:

    <!-- [[[cog cog.out(g.run("lenet5 summary classic")) ]]] -->
    ...generated...
    <!-- [[[end]]] -->

``g`` is this module. Cheap commands (help, summaries, error messages) run in this
process, in an empty temporary directory with an empty cache and no data, so their output
does not depend on the machine. What takes minutes (training, benchmarks) is measured by
``docs/measure.py`` into ``docs/results/*.json`` and only rendered here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
RESULTS = DOCS / "results"
sys.path.insert(0, str(ROOT / "src"))

COLUMNS = "100"  # argparse wraps help at the terminal's width
MODEL_ORDER = ["classic", "modern", "classic-c5conv", "modern-c5conv", "sigmoid", "keras",
               "lenet5-1998", "reader", "lenet5-sdnn", "lenet5-ctc", "alexnet"]
# the page that says more about each command (relative to docs/); a command not listed
# here still gets its row in the table
COMMAND_DOCS = {"prepare": "datasets.md", "summary": "models.md", "train": "training.md",
                "eval": "plots.md", "predict": "predict.md", "plot": "plots.md",
                "export": "export.md", "serve": "serve.md", "bench": "performance.md",
                "read": "reading.md", "weights": "weights.md"}


def files() -> list[Path]:
    """Every Markdown file that may hold generated blocks."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@contextlib.contextmanager
def _isolated(env: dict[str, str]):
    """An empty working directory and cache, no data directory, the given variables."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("LENET5_DATA_DIR", None)
        os.environ.update({"COLUMNS": COLUMNS, "LENET5_CACHE_DIR": str(Path(tmp) / "cache"),
                           "LENET5_SYSTEM_DATA_DIRS": "", **env})
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)


def lenet5(command: str, env: dict[str, str] | None = None,
           files: list[str] = ()) -> tuple[int, str]:
    """Run ``lenet5 ...`` in this process: (exit status, stdout and stderr as printed).
    ``files`` (paths from the repository root) are copied into the working directory first,
    so that the command names them by their file names."""
    from lenet5.cli import main

    argv = shlex.split(command)
    if argv[0] != "lenet5":
        raise ValueError(f"not a lenet5 command: {command}")
    out = io.StringIO()
    with _isolated(env or {}) as tmp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        for f in files:
            shutil.copy(ROOT / f, tmp / Path(f).name)
        try:
            status = main(argv[1:])
        except SystemExit as e:  # --help, and argparse's usage errors
            status = e.code if isinstance(e.code, int) else 1
    return status, out.getvalue()


def fence(text: str, command: str | None = None) -> str:
    lines = ([f"$ {command}"] if command else []) + text.rstrip("\n").splitlines()
    return "```\n" + "\n".join(line.rstrip() for line in lines) + "\n```\n"


def run(command: str, head: int | None = None, status: int = 0, files: list[str] = ()) -> str:
    """A fenced block: ``$ command`` and what it printed (its first ``head`` lines).
    Fails unless the command exits with ``status`` (non-zero: an error shown on purpose).
    ``files``: see :func:`lenet5`, e.g. ``run("lenet5 predict digit.png", files=["docs/digit.png"])``."""
    code, text = lenet5(command, files=files)
    if code != status:
        raise RuntimeError(f"{command!r} exited {code}, not {status}:\n{text}")
    lines = text.rstrip("\n").splitlines()
    if head and len(lines) > head:
        lines = lines[:head] + ["..."]
    return fence("\n".join(lines), command)


# ---- tables from the code itself -------------------------------------------------------

def _parser():
    import argparse

    from lenet5.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    return sub.choices, helps


def _synopsis(name: str, parser) -> str:
    words = [f"lenet5 {name}"]
    for action in parser._actions:
        if action.option_strings:
            continue
        word = (action.metavar or action.dest).upper()
        word = {"?": f"[{word}]", "+": f"{word}...", "*": f"[{word}...]"}.get(action.nargs, word)
        words.append(word)
    return " ".join(words)


def takes(parser, flag: str) -> bool:
    return any(flag in action.option_strings for action in parser._actions)


def commands_table(base: str = "docs/") -> str:
    """Every command of ``lenet5``, from its own parser: what it does, whether it takes
    ``--data-dir``, and the page that says more."""
    parsers, helps = _parser()
    rows = ["| command | what it does | `--data-dir` | more |", "| --- | --- | :---: | --- |"]
    for name, parser in parsers.items():
        page = COMMAND_DOCS.get(name)
        more = f"[{page[:-3]}]({base}{page})" if page else ""
        rows.append(f"| `{_synopsis(name, parser)}` | {helps[name]} | "
                    f"{'yes' if takes(parser, '--data-dir') else ''} | {more} |")
    return "\n".join(rows) + "\n"


def data_dir_commands() -> str:
    parsers, _ = _parser()
    names = [f"`{n}`" for n, p in parsers.items() if takes(p, "--data-dir")]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _params(name: str) -> int:
    from lenet5 import create_model

    return sum(p.numel() for p in create_model(name).parameters() if p.requires_grad)


def _description(name: str) -> str:
    from lenet5.models import get_model_entry

    text = get_model_entry(name).description
    return re.sub(r"\s*\((?:[\d,]+(?: parameters)?)\)", "", text).rstrip(".")


def models_table(base: str = "docs/") -> str:
    """The registered models: what each is, its trainable parameters (counted here), and
    its MNIST test accuracy from ``docs/results/training.json``."""
    from lenet5 import list_models

    acc = {r["model"]: r["test_acc"] for r in results("training")["runs"] if r["dataset"] == "mnist"}
    names = [n for n in MODEL_ORDER if n in list_models()]
    names += [n for n in list_models() if n not in names]
    rows = ["| `--model` | what it is | parameters | MNIST test accuracy |",
            "| --- | --- | ---: | ---: |"]
    special = {"lenet5-1998": f"[{reproduced_error()}% error]({base}paper.md)",
               "reader": f"[{reader_mean():.2f}%]({base}reader.md)",
               "lenet5-sdnn": f"[whole numbers]({base}reading.md)",
               "lenet5-ctc": f"[whole numbers]({base}reading.md)",
               "reader-ctc": f"[whole numbers]({base}reading.md)"}
    for name in names:
        score = f"{100 * acc[name]:.2f}%" if name in acc else special.get(name, "-")
        rows.append(f"| `{name}` | {_description(name)} | {_params(name):,} | {score} |")
    return "\n".join(rows) + "\n"


# ---- results of long runs (docs/measure.py) ----------------------------------------------

def results(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def provenance(data: dict, rerun: str, timings: bool = False) -> str:
    """One line saying where the figures come from."""
    c = data.get("conditions") or {}
    if data.get("source") == "transcribed":
        return (f"*Transcribed from an earlier measurement ({data['transcribed_from']}); "
                f"`{rerun}` measures it again.*\n")
    where = [c.get("cpu"), f"{c.get('cores')} cores", f"torch {c.get('torch')}"]
    if timings and c.get("load_average", 0) > c.get("cores", 1):  # times slowed by neighbours
        where.append(f"a shared machine, load average {c['load_average']}: timings noisy")
    return f"*Measured {c.get('date', '')} ({', '.join(where)}) by `{rerun}`.*\n"


def training_table(dataset: str = "mnist") -> str:
    data = results("training")
    rows = ["| model | command | test accuracy | misses |", "| --- | --- | ---: | ---: |"]
    for r in data["runs"]:
        if r["dataset"] == dataset:
            rows.append(f"| {r['model']} | `{r['recipe_command']}` | {r['test_acc']:.4f} | "
                        f"{r['test_miss']} |")
    return "\n".join(rows) + "\n\n" + provenance(data, "python docs/measure.py training")


def shown(name: str, command: str, tail: int | None = None) -> str:
    """A fenced block of a command's output as ``docs/measure.py`` recorded it."""
    data = results(name)
    run_ = next((r for r in data["runs"] if r["command"] == command), None)
    if run_ is None:
        raise KeyError(f"docs/results/{name}.json has no run of {command!r}")
    lines = run_["output"].splitlines()
    if tail and len(lines) > tail:
        lines = ["..."] + lines[-tail:]
    return fence("\n".join(lines), command)


def script(name: str, file: str) -> str:
    return "```python\n" + results(name)["scripts"][file].rstrip("\n") + "\n```\n"


def bench_table(name: str = "bench-modern") -> str:
    from lenet5.bench.core import format_table

    data = results(name)
    return (f"`{data['command']}`:\n\n" + format_table(data) + "\n\n"
            + provenance(data, "python docs/measure.py bench"))


def bench_headline(name: str = "bench-modern", base: str = "docs/") -> str:
    """One sentence of ``lenet5 bench``'s figures, for the README."""
    d = results(name)
    m, ref, proj, r = d["machine"], d["reference"], d["project"], d["ratio"]
    return (f"On {m['cores']} CPU cores, `{d['command']}` trains `{d['config']['model']}` "
            f"{1 / r['epoch_seconds']:.1f}x faster per epoch than the usual PyTorch loop "
            f"({proj['epoch_seconds']:.2f} s against {ref['epoch_seconds']:.2f} s), evaluates "
            f"{r['eval_images_per_s']:.1f}x faster, and reaches {d['config']['target']:.0%} test "
            f"accuracy {proj['time_to_target_s']:.1f} s after the process starts "
            f"({1 / r['time_to_target_s']:.1f}x sooner): [performance]({base}performance.md)"
            + (", figures from an earlier run." if d.get("source") == "transcribed" else ".") + "\n")


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def reproduced_error(experiment: str = "plain") -> str:
    runs = [r for r in results("reproduce-1998")["runs"] if r["experiment"] == experiment]
    return f"{statistics.mean(r['test_error'] for r in runs):.2f}"


def reproduce_table() -> str:
    """The paper's two experiments against ours, as ``benchmarks/reproduce_1998.py``
    reports them, from ``docs/results/reproduce-1998.json``."""
    data = results("reproduce-1998")
    paper = data["paper"]
    rows = ["| experiment | measure | paper | ours: mean ± std over seeds | per seed |",
            "| --- | --- | ---: | --- | --- |"]
    for exp in ("plain", "distorted"):
        runs = sorted((r for r in data["runs"] if r["experiment"] == exp), key=lambda r: r["seed"])
        for key, measure in (("test_error", "test error % after 20 passes"),
                             ("train_error_19", "training error % after 19 passes")):
            values = [r[key] for r in runs if r.get(key) is not None]
            if len(values) == len(runs):
                ours = _mean_sd(values)
                seeds = ", ".join(f"{r['seed']}: {r[key]:.2f}" for r in runs)
            else:  # only the summary was recorded
                ours, seeds = data["summary"][exp][key], ""
            p = paper[exp].get(key)
            rows.append(f"| {exp} | {measure} | {'-' if p is None else f'{p:.2f}'} | {ours} | {seeds} |")
    return ("`" + data["command"] + "`:\n\n" + "\n".join(rows) + "\n\n"
            + provenance(data, "python docs/measure.py reproduce-1998 runs/reproduce_1998/results.jsonl"))


def robustness_table(view: str = "predict") -> str:
    """Accuracy % per model and shift in one view, from ``docs/results/robustness.json``
    (``benchmarks/robustness.py --json``): a shift more than the floor's points below the
    model's clean accuracy is starred, the exempt shifts are in parentheses."""
    data = results("robustness")
    exempt, floor = set(data["exempt"]), data["floor_points"]
    first = next(iter(data["models"].values()))
    keys = [k for k in first if k.endswith(f"/{view}")]
    if view == "predict":  # photos and other writers are read as predict reads them
        keys += [k for k in first if "/" not in k or k.split("/")[1] not in ("predict", "raw")]

    def head(key: str) -> str:
        shift = key.split("/")[0].replace("_", " ")
        return f"({shift})" if shift in exempt else shift

    rows = ["| model | " + " | ".join(head(k) for k in keys) + " |",
            "| --- |" + " ---: |" * len(keys)]
    for name, row in data["models"].items():
        clean = row[f"clean/{view}"]
        cells = []
        for k in keys:
            shift, a = k.split("/")[0], row[k]
            low = shift not in exempt and shift != "other_writers" and (clean - a) * 100 > floor
            cells.append(f"{100 * a:.2f}{'*' if low else ''}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return ("`" + data["command"] + "`:\n\n" + "\n".join(rows) + "\n\n"
            + provenance(data, data["command"]))


READER_CHANGES = {  # benchmarks/train_reader.py --tag -> what the run changes
    "modern": "LeNet-5 (`modern`: ReLU, max pooling) with its own recipe (10 epochs)",
    "modern-writing": "`modern` with the `writing` augmentation",
    "reader-noaug": "the reader's network (batch norm, wide C1/C3, no F6) and recipe (20 epochs), "
                    "no augmentation",
    "reader-nonorm": "the reader without batch norm",
    "reader": "the reader as shipped: its network, recipe and `writing` augmentation",
}


def reader_ablations() -> str:
    """What each of the reader's changes is worth on the validation split, from
    ``docs/results/reader.json`` (``benchmarks/train_reader.py`` records)."""
    data = results("reader")
    exempt = set(data["exempt"])
    rows = ["| run | validation accuracy | worst shift (points below clean) | rotate15 | lowres8 "
            "| s/epoch (1 thread) |", "| --- | ---: | --- | ---: | ---: | ---: |"]
    for r in data["validation"]["runs"]:
        rob = r.get("robustness", {})
        drops = {k: 100 * (rob["clean"] - a) for k, a in rob.items() if k not in exempt | {"clean"}}
        worst = max(drops, key=drops.get) if drops else None
        worst_cell = f"{worst} {drops[worst]:.2f}" if worst else "-"
        cells = [f"{100 * rob[k]:.2f}" if k in rob else "-" for k in ("rotate15", "lowres8")]
        rows.append(f"| {READER_CHANGES.get(r['tag'], r['tag'])} | {100 * r['val']:.2f} | "
                    f"{worst_cell} | {' | '.join(cells)} | {r['seconds_per_epoch']:.1f} |")
    return ("`" + data["validation"]["command"] + "`, seed 0:\n\n" + "\n".join(rows) + "\n\n"
            + provenance(data, "python benchmarks/train_reader.py", timings=True))


def reader_mean() -> float:
    """The reader's mean test accuracy (%) over the seeds of ``docs/results/reader.json``."""
    return statistics.mean(100 * r["test_acc"] for r in results("reader")["test"]["runs"])


def reader_seeds() -> str:
    """The shipped recipe's test accuracy after its last epoch, per seed."""
    data = results("reader")
    runs = data["test"]["runs"]
    rows = ["| seed | test accuracy after the last epoch | s/epoch |", "| ---: | ---: | ---: |"]
    rows += [f"| {r['seed']} | {100 * r['test_acc']:.2f} | {r['seconds_per_epoch']:.1f} |" for r in runs]
    mean = reader_mean()
    return ("`" + data["test"]["command"] + "`:\n\n" + "\n".join(rows)
            + f"\n\nMean over {len(runs)} seeds: **{mean:.2f}%**.\n\n"
            + provenance(data, data["test"]["command"], timings=True))


# ---- the entry point -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    import argparse

    from cogapp import Cog

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 if a block is stale")
    p.add_argument("files", nargs="*", type=Path, help="default: README.md and docs/*.md")
    args = p.parse_args(argv)
    paths = [str(f.resolve().relative_to(ROOT)) for f in args.files or files()]
    mode = ["--check", "--diff", "--check-fail-msg", "run: python docs/generate.py"] if args.check else ["-r"]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return Cog().main(["cog", *mode, "-U", "--verbosity", "1", "-I", str(DOCS),
                           "-p", "import generate as g", *paths])
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    sys.exit(main())
