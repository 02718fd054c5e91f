"""Fetching dataset files from their public mirrors into the cache, verified before use.

For each file:

* a lock file (``.<name>.lock``, via ``filelock``) makes a second process that wants the
  same file wait, then find it already there, instead of downloading it twice or writing
  over the first;
* the bytes stream to ``<name>.part`` beside the destination with a progress bar; a
  dropped connection or a timeout is retried with exponential backoff, resuming the
  ``.part`` with an HTTP ``Range`` request (a server that ignores ``Range`` sends the whole
  file again, and the ``.part`` starts over); a ``.part`` left by an interrupted run is
  resumed the same way;
* a missing file (404 and the like) or a refused connection moves on to the next mirror
  at once; so does a file whose hash is wrong;
* the hash (SHA-256 of the decompressed content, or the published MD5 of the download) is
  checked on the ``.part``, and only a good file is renamed into place, atomically.

Hand-written on the standard library's ``urllib`` rather than ``requests``: resuming needs
only a ``Range`` header and a status check, and the core install stays small.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from filelock import FileLock
from tqdm import tqdm

from ..errors import Lenet5Error
from ..io import atomic_write_bytes
from .idx import UBYTE, read_idx
from .registry import Archive

CHUNK = 1 << 16
TIMEOUT_S = 30.0
RETRIES = 3  # per mirror, after the first try
BACKOFF_S = 1.0  # first pause between tries; doubled after each
_PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 451}


class _Retry(Exception):
    """A transient failure: try the same mirror again (resuming)."""


class _NextMirror(Exception):
    """This mirror cannot serve the file: move on to the next."""


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": "lenet5"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the .part is not a prefix of this file: start over
            raise _Retry("HTTP 416 (range not satisfiable), starting over") from None
        if e.code in _PERMANENT_HTTP:
            raise _NextMirror(f"HTTP {e.code} {e.reason}") from None
        raise _Retry(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
            raise _NextMirror(str(reason)) from None
        raise _Retry(str(reason)) from None


def _fetch(url: str, part: Path, desc: str, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming what is already there when the server allows."""
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(url, offset, timeout)
    try:
        with resp:
            if offset and resp.status == 206:
                m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    part.unlink(missing_ok=True)
                    raise _Retry("the server answered a different range; starting over")
                mode = "ab"
            else:  # 200: the server sends the whole file (it ignored or was not asked Range)
                offset, mode = 0, "wb"
            total = None if resp.length is None else offset + resp.length
            received = offset
            with open(part, mode) as out, tqdm(
                total=total, initial=offset, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, leave=False, disable=None,
            ) as bar:
                while chunk := resp.read1(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received < total:
                raise _Retry(f"connection closed after {received:,} of {total:,} bytes")
    except (http.client.HTTPException, OSError) as e:  # dropped, reset, timed out mid-stream
        raise _Retry(f"{type(e).__name__}: {e}") from None


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _verify(part: Path, sha256: str | None, md5: str | None, expect_ndim: int | None,
            dtypes: tuple[int, ...]) -> None:
    if md5 is not None and (got := _md5(part)) != md5:
        raise Lenet5Error(f"MD5 {got[:12]}..., expected {md5[:12]}...")
    if sha256 is not None or expect_ndim is not None:
        got = read_idx(part, expect_ndim, dtypes)
        if sha256 is not None and got.sha256 != sha256:
            raise Lenet5Error(f"content SHA-256 {got.sha256[:12]}..., expected {sha256[:12]}...")


def lock_for(path: Path) -> FileLock:
    """The lock that guards writing ``path`` (a hidden lock file beside it)."""
    return FileLock(str(path.with_name(f".{path.name}.lock")))


def download_file(
    file_name: str,
    mirrors: list[str] | tuple[str, ...],
    dest_dir: Path,
    sha256: str | None = None,
    expect_ndim: int | None = None,
    timeout: float = TIMEOUT_S,
    *,
    md5: str | None = None,
    remote_name: str | None = None,
    dtypes: tuple[int, ...] = (UBYTE,),
    retries: int = RETRIES,
    backoff: float = BACKOFF_S,
) -> Path:
    """Download ``<mirror>/<remote_name>`` (default ``<file_name>.gz``) from the first mirror
    that serves a good copy; return its verified path in ``dest_dir``.

    ``sha256``: of the decompressed IDX content; ``md5``: of the file as downloaded;
    ``expect_ndim``/``dtypes``: the IDX header it must have.
    """
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Lenet5Error(f"cannot write to the cache {dest_dir}: {e.strerror or e}") from None
    dest = dest_dir / (remote_name or f"{file_name}.gz")
    part = dest.with_name(dest.name + ".part")
    failures = []
    with lock_for(dest):
        if dest.is_file():  # another process fetched and verified it while we waited
            return dest
        for base in mirrors:
            url = base.rstrip("/") + "/" + dest.name
            restarted = False
            attempt = 0
            while True:
                resumed = part.exists() and part.stat().st_size > 0
                try:
                    _fetch(url, part, file_name, timeout)
                    _verify(part, sha256, md5, expect_ndim, dtypes)
                    os.replace(part, dest)
                    return dest
                except _Retry as e:
                    if attempt >= retries:
                        failures.append(f"{url}: {e} (gave up after {attempt + 1} tries)")
                        break
                    time.sleep(backoff * 2**attempt)
                    attempt += 1
                except _NextMirror as e:
                    failures.append(f"{url}: {e}")
                    break
                except Lenet5Error as e:  # wrong bytes
                    part.unlink(missing_ok=True)
                    if resumed and not restarted:  # perhaps a stale .part: once more from 0
                        restarted = True
                        continue
                    failures.append(f"{url}: {e}")
                    break
            part.unlink(missing_ok=True)  # a new mirror starts from zero
    raise Lenet5Error(
        f"could not download {file_name} from any mirror ({'; '.join(failures)}). "
        "Without network, point lenet5 at local copies of the files: "
        "--data-dir DIR or the LENET5_DATA_DIR environment variable"
    )


def download_archive(archive: Archive, mirrors: list[str] | tuple[str, ...], dest_dir: Path,
                     timeout: float = TIMEOUT_S) -> dict[str, Path]:
    """Fetch ``archive`` (a zip, verified by its published MD5), extract the members the
    dataset needs as ``<file>.gz`` into ``dest_dir`` (each checked by the zip's CRC-32),
    then delete the zip. Returns canonical file name -> path."""
    targets = {f: dest_dir / f"{f}.gz" for f in archive.members}
    dest_dir.mkdir(parents=True, exist_ok=True)
    with lock_for(dest_dir / f"{archive.name}.extract"):
        if all(p.is_file() for p in targets.values()):
            return targets
        zpath = download_file(archive.name, mirrors, dest_dir, timeout=timeout,
                              md5=archive.md5, remote_name=archive.name)
        try:
            with zipfile.ZipFile(zpath) as z:
                for f, member in archive.members.items():
                    try:
                        data = z.read(member)  # raises BadZipFile on a CRC-32 mismatch
                    except KeyError:
                        raise Lenet5Error(f"{zpath} has no member {member}") from None
                    atomic_write_bytes(targets[f], data)
        except (zipfile.BadZipFile, OSError) as e:
            raise Lenet5Error(f"{zpath} is not a good zip archive ({e}); delete it") from None
        zpath.unlink(missing_ok=True)
    return targets
