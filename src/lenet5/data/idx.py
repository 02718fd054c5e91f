"""Reading the IDX format of MNIST and its siblings (gzip-compressed or raw).

IDX: a 4-byte magic ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes,
then the data. MNIST uses type 0x08 (unsigned byte): ndim 3 for images, 1 for labels.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Lenet5Error

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IdxFile:
    array: np.ndarray  # uint8, shape from the header
    sha256: str  # of the decompressed content


def read_bytes(path: Path) -> bytes:
    """The decompressed content of ``path`` (gzip detected by its magic, not its name)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise Lenet5Error(f"cannot read {path}: {e.strerror or e}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise Lenet5Error(
            f"{path} is truncated or corrupt ({e}); delete it and fetch it again "
            "(`lenet5 prepare`)"
        ) from None


def parse_idx(data: bytes, name: str = "<bytes>", expect_ndim: int | None = None) -> np.ndarray:
    """Parse IDX bytes into a uint8 array; refuse a wrong magic, shape or length."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise Lenet5Error(f"{name} is not an IDX file (wrong magic number)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise Lenet5Error(f"{name}: IDX data type 0x{dtype_code:02x} is not unsigned byte (0x08)")
    if expect_ndim is not None and ndim != expect_ndim:
        raise Lenet5Error(f"{name}: IDX header has {ndim} dimensions, expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise Lenet5Error(f"{name} is truncated (IDX header incomplete)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise Lenet5Error(
            f"{name} is {what}: {len(data):,} bytes, header {shape} needs {expected:,}; "
            "fetch it again (`lenet5 prepare`)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: Path, expect_ndim: int | None = None) -> IdxFile:
    """Read, hash and parse one IDX file."""
    data = read_bytes(path)
    array = parse_idx(data, str(path), expect_ndim)
    return IdxFile(array=array, sha256=hashlib.sha256(data).hexdigest())
