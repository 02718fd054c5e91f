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
  checked on the ``.part``, and only a good file is renamed into place, atomically;
* every download is bounded: in size (what the file can be, from the dataset's image
  count and image size, or the archive's published size: a server that announces or sends
  more is cut off at once), in time (each mirror gets a deadline per file, however slowly
  it trickles), and in memory (the check decompresses at most what the IDX header
  announces, itself bounded, see idx.py). A mirror that hits a bound is abandoned for the
  next, and the error says which bound.

Hand-written on the standard library's ``urllib`` rather than ``requests``: resuming needs
only a ``Range`` header and a status check, and the core install stays small.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..errors import Lenet5Error
from .idx import ANY, IdxFormat, read_idx
from .registry import Archive

if TYPE_CHECKING:
    from filelock import FileLock

CHUNK = 1 << 16
TIMEOUT_S = 30.0  # per connection attempt and per read
RETRIES = 3  # per mirror, after the first try
BACKOFF_S = 1.0  # first pause between tries; doubled after each
# Each mirror has DEADLINE_S, plus the time the file's size bound takes at MIN_RATE, to
# deliver a file: 5 minutes for MNIST's training images, 38 for EMNIST's 562 MB archive.
DEADLINE_S = 120.0
MIN_RATE = 256 * 1024  # bytes per second
MAX_BYTES = 1 << 30  # the size bound of a file of no known format (none of the datasets')
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


def gz_bound(content_bytes: int) -> int:
    """The most a gzip file of ``content_bytes`` can take (deflate's stored blocks add 5
    bytes per 64 KiB; the gzip header and trailer, 18 bytes and the file name)."""
    return content_bytes + content_bytes // 1000 + 4096


def deadline_for(max_bytes: int) -> float:
    return DEADLINE_S + max_bytes / MIN_RATE


class _Bounds:
    """What one mirror may cost for one file: ``max_bytes``, and ``seconds`` from now on."""

    def __init__(self, max_bytes: int, seconds: float):
        self.max_bytes, self.seconds = max_bytes, seconds
        self.until = time.monotonic() + seconds

    def left(self) -> float:
        return self.until - time.monotonic()

    def past_deadline(self, received: int) -> _NextMirror:
        return _NextMirror(f"not done within the {self.seconds:.0f} s deadline "
                           f"({received:,} bytes received)")


def _fetch(url: str, part: Path, desc: str, timeout: float, bounds: _Bounds) -> None:
    """Stream ``url`` into ``part``, resuming what is already there when the server allows;
    abandon the mirror (``_NextMirror``) past its size bound or its deadline."""
    if bounds.left() <= 0:
        raise bounds.past_deadline(0)
    offset = part.stat().st_size if part.exists() else 0
    if offset > (max_bytes := bounds.max_bytes):
        part.unlink()
        offset = 0
    resp = _open(url, offset, max(0.1, min(timeout, bounds.left())))
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
            if total is not None and total > max_bytes:
                raise _NextMirror(f"announces {total:,} bytes, more than the {max_bytes:,} the "
                                  "file can be (size bound)")
            received = offset
            with open(part, mode) as out, tqdm(
                total=total, initial=offset, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, leave=False, disable=None,
            ) as bar:
                while chunk := resp.read1(CHUNK):
                    if received + len(chunk) > max_bytes:
                        raise _NextMirror(f"sent more than the {max_bytes:,} bytes the file can "
                                          "be (size bound)")
                    if bounds.left() < 0:
                        raise bounds.past_deadline(received)
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received < total:
                raise _Retry(f"connection closed after {received:,} of {total:,} bytes")
    except (http.client.HTTPException, OSError) as e:  # dropped, reset, timed out mid-stream
        raise _Retry(f"{type(e).__name__}: {e}") from None


def _md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _verify(part: Path, sha256: str | None, md5: str | None, fmt: IdxFormat | None) -> None:
    if md5 is not None and (got := _md5(part)) != md5:
        raise Lenet5Error(f"MD5 {got[:12]}..., expected {md5[:12]}...")
    if sha256 is not None or fmt is not None:
        got = read_idx(part, fmt or ANY)
        if sha256 is not None and got.sha256 != sha256:
            raise Lenet5Error(f"content SHA-256 {got.sha256[:12]}..., expected {sha256[:12]}...")


def lock_for(path: Path) -> FileLock:
    """The lock that guards writing ``path`` (a hidden lock file beside it)."""
    from filelock import FileLock  # only when a file is fetched: not on every start

    return FileLock(str(path.with_name(f".{path.name}.lock")))


def download_file(
    file_name: str,
    mirrors: list[str] | tuple[str, ...],
    dest_dir: Path,
    sha256: str | None = None,
    fmt: IdxFormat | None = None,
    timeout: float = TIMEOUT_S,
    *,
    md5: str | None = None,
    remote_name: str | None = None,
    retries: int = RETRIES,
    backoff: float = BACKOFF_S,
    max_bytes: int | None = None,
    deadline: float | None = None,
) -> Path:
    """Download ``<mirror>/<remote_name>`` (default ``<file_name>.gz``) from the first mirror
    that serves a good copy; return its verified path in ``dest_dir``.

    ``sha256``: of the decompressed IDX content; ``md5``: of the file as downloaded;
    ``fmt``: what its IDX header must say. ``max_bytes``: the most the download may be
    (default: what a .gz of ``fmt`` can be, else ``MAX_BYTES``); ``deadline``: seconds each
    mirror has to deliver it (default: ``deadline_for(max_bytes)``).
    """
    max_bytes = max_bytes or (gz_bound(fmt.max_bytes()) if fmt is not None else MAX_BYTES)
    deadline = deadline or deadline_for(max_bytes)
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
            bounds = _Bounds(max_bytes, deadline)
            while True:
                resumed = part.exists() and part.stat().st_size > 0
                try:
                    _fetch(url, part, file_name, timeout, bounds)
                    _verify(part, sha256, md5, fmt)
                    os.replace(part, dest)
                    return dest
                except _Retry as e:
                    if attempt >= retries:
                        failures.append(f"{url}: {e} (gave up after {attempt + 1} tries)")
                        break
                    if bounds.left() < backoff * 2**attempt:
                        failures.append(f"{url}: {e}; not done within the {deadline:.0f} s "
                                        "deadline")
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


def _extract(z: zipfile.ZipFile, member: str, dest: Path, max_bytes: int) -> None:
    """Stream one member to ``dest`` (through a temporary file, renamed when complete)."""
    try:
        info = z.getinfo(member)
    except KeyError:
        raise Lenet5Error(f"{z.filename} has no member {member}") from None
    if info.file_size > max_bytes:  # zipfile reads no more than the size a member declares
        raise Lenet5Error(f"{z.filename}: member {member} declares {info.file_size:,} bytes, "
                          f"more than the {max_bytes:,} of the whole archive (size bound)")
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with z.open(info) as src, open(tmp, "wb") as out:  # BadZipFile on a CRC-32 mismatch
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download_archive(archive: Archive, mirrors: list[str] | tuple[str, ...], dest_dir: Path,
                     timeout: float = TIMEOUT_S) -> dict[str, Path]:
    """Fetch ``archive`` (a zip of known size, verified by its published MD5), extract the
    members the dataset needs as ``<file>.gz`` into ``dest_dir`` (each checked by the zip's
    CRC-32), then delete the zip. Returns canonical file name -> path."""
    targets = {f: dest_dir / f"{f}.gz" for f in archive.members}
    dest_dir.mkdir(parents=True, exist_ok=True)
    with lock_for(dest_dir / f"{archive.name}.extract"):
        if all(p.is_file() for p in targets.values()):
            return targets
        zpath = download_file(archive.name, mirrors, dest_dir, timeout=timeout,
                              md5=archive.md5, remote_name=archive.name, max_bytes=archive.size)
        try:
            with zipfile.ZipFile(zpath) as z:
                for f, member in archive.members.items():
                    _extract(z, member, targets[f], archive.size)
        except (zipfile.BadZipFile, OSError) as e:
            raise Lenet5Error(f"{zpath} is not a good zip archive ({e}); delete it") from None
        zpath.unlink(missing_ok=True)
    return targets
