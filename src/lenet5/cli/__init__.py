"""The ``lenet5`` command line. Each command is a module here with ``add_parser`` and ``run``.

Adding a command: write ``cli/<name>.py`` with ``add_parser(subparsers)`` (which sets
``func=run`` as the parser default) and list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from .. import __version__
from ..errors import Lenet5Error

COMMANDS = ["prepare", "summary", "train", "eval", "predict", "read", "plot", "export", "serve",
            "bench", "weights"]
DEBUG_ENV = "LENET5_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lenet5",
        description="LeNet-5 and its family: prepare data, inspect, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"lenet5 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except Lenet5Error as e:
        print(f"lenet5: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lenet5: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lenet5 summary X | head`: the reader left, as with any Unix tool
        # Python would report the pipe again when it flushes stdout at exit: point it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        else:
            print(f"lenet5: internal error: {type(e).__name__}: {e} "
                  f"(set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 70
