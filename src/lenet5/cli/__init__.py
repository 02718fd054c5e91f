"""The ``lenet5`` command line. Each command is a module here with ``add_parser`` and ``run``.

Adding a command: write ``cli/<name>.py`` with ``add_parser(subparsers)`` (which sets
``func=run`` as the parser default) and list it in ``COMMANDS``. A run imports only its own
command's module (``lenet5 predict`` has no use for training's or serving's imports); the
full parser is built for ``lenet5 --help`` and whatever is not a command.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import Lenet5Error

COMMANDS = ["prepare", "summary", "train", "eval", "predict", "read", "plot", "export", "serve",
            "bench", "weights"]
DEBUG_ENV = "LENET5_DEBUG"


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser of ``lenet5`` with the subcommands ``commands`` (by default all; each
    one's module is imported to add its subparser)."""
    parser = argparse.ArgumentParser(
        prog="lenet5",
        description="LeNet-5 and its family: prepare data, inspect, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"lenet5 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in commands:
        importlib.import_module(f"{__name__}.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    program = argv is None  # run as the program, not called from Python that goes on after
    argv = sys.argv[1:] if argv is None else list(argv)
    # Importing the command imports PyTorch: ~170,000 objects, all kept for the process's
    # life. The garbage collector would walk them all several times as they are made, and
    # again in every full collection after: ~0.15 s of a start. It waits for the imports,
    # and the program's own run (which ends with them) leaves them out of its collections.
    gc.disable()
    try:
        # `lenet5 CMD ...`: CMD's subparser parses and reports exactly as in the full parser
        parser = build_parser([argv[0]] if argv and argv[0] in COMMANDS else COMMANDS)
    finally:
        if program:
            gc.freeze()
        gc.enable()
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
