"""``lenet5 serve``: draw a digit in the browser and watch LeNet-5 read it, with a JSON API.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart): ``pip install 'lenet5[serve]'``.
The model side (:mod:`.engine`) needs only torch; the web side (:mod:`.app`) is imported
on demand, so ``import lenet5`` never needs the extra.
"""

from __future__ import annotations

import importlib.util

from ..errors import Lenet5Error

EXTRA = ("fastapi", "uvicorn", "multipart", "httptools")  # python-multipart imports as `multipart`


def require_serve_extra() -> None:
    """Raise a one-line Lenet5Error naming the missing packages, if any."""
    missing = [m for m in EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join("python-multipart" if m == "multipart" else m for m in missing)
        raise Lenet5Error(f"lenet5 serve needs {names}: pip install 'lenet5[serve]'")


def create_app(checkpoints, limits=None):
    """The FastAPI app serving ``checkpoints``; see :func:`lenet5.serve.app.create_app`."""
    require_serve_extra()
    from .app import create_app as _create_app

    return _create_app(checkpoints, limits)


__all__ = ["create_app", "require_serve_extra"]
