"""Fetching dataset files from their public mirrors into the cache, verified before use.

A file is streamed to ``<name>.part`` beside its destination, its decompressed content is
checked against the published SHA-256, and only then renamed into place; a failure at any
step moves on to the next mirror and leaves nothing half-written behind.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import Lenet5Error
from .idx import read_idx

CHUNK = 1 << 16
TIMEOUT_S = 30.0


def _fetch(url: str, dest: Path, desc: str, timeout: float) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "lenet5"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
        total = resp.length
        with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                  leave=False, disable=None) as bar:
            received = 0
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:
            raise http.client.IncompleteRead(b"", total - received)


def download_file(
    file_name: str,
    mirrors: list[str] | tuple[str, ...],
    dest_dir: Path,
    sha256: str | None,
    expect_ndim: int | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download ``<mirror>/<file_name>.gz`` from the first mirror that serves a good copy.

    Returns the path of the verified file in ``dest_dir``.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{file_name}.gz"
    part = dest.with_name(dest.name + ".part")
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + dest.name
        try:
            _fetch(url, part, file_name, timeout)
            got = read_idx(part, expect_ndim)
            if sha256 is not None and got.sha256 != sha256:
                raise Lenet5Error(f"content SHA-256 {got.sha256[:12]}..., expected {sha256[:12]}...")
            os.replace(part, dest)
            return dest
        except (urllib.error.URLError, http.client.HTTPException, OSError, Lenet5Error) as e:
            reason = getattr(e, "reason", None) or e
            failures.append(f"{url}: {reason}")
        finally:
            part.unlink(missing_ok=True)
    raise Lenet5Error(
        f"could not download {file_name} from any mirror ({'; '.join(failures)}). "
        "Without network, point lenet5 at local copies of the files: "
        "--data-dir DIR or the LENET5_DATA_DIR environment variable"
    )
