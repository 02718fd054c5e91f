"""Reading the IDX format of MNIST and its siblings (gzip-compressed or raw).

IDX: a 4-byte magic ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes,
then the data. MNIST uses type 0x08 (unsigned byte): ndim 3 for images, 1 for labels.
QMNIST's labels are type 0x0C (big-endian int32), ndim 2: one row of 8 columns per image.
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
UBYTE, INT32 = 0x08, 0x0C
# IDX type code -> (big-endian numpy dtype, name)
_TYPES = {
    0x08: (np.dtype("u1"), "unsigned byte"),
    0x09: (np.dtype("i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "int16"),
    0x0C: (np.dtype(">i4"), "int32"),
    0x0D: (np.dtype(">f4"), "float32"),
    0x0E: (np.dtype(">f8"), "float64"),
}


@dataclass(frozen=True)
class IdxFile:
    array: np.ndarray  # shape from the header; uint8 unless other types were allowed
    sha256: str  # of the decompressed content
    file_md5: str | None = None  # of the file as stored (e.g. the .gz), when asked for


def read_bytes(path: Path) -> bytes:
    """The decompressed content of ``path`` (gzip detected by its magic, not its name)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise Lenet5Error(f"cannot read {path}: {e.strerror or e}") from None
    return decompress(raw, path)


def decompress(raw: bytes, path: Path | str = "<bytes>") -> bytes:
    """``raw`` itself, or its gzip decompression when it starts with the gzip magic."""
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise Lenet5Error(
            f"{path} is truncated or corrupt ({e}); delete it and fetch it again "
            "(`lenet5 prepare`)"
        ) from None


def parse_idx(data: bytes, name: str = "<bytes>", expect_ndim: int | None = None,
              dtypes: tuple[int, ...] = (UBYTE,)) -> np.ndarray:
    """Parse IDX bytes into an array of one of the allowed ``dtypes`` (IDX type codes; only
    unsigned byte by default), in native byte order; refuse a wrong magic, type, shape or
    length."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise Lenet5Error(f"{name} is not an IDX file (wrong magic number)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code not in dtypes or dtype_code not in _TYPES:
        allowed = " or ".join(f"{_TYPES[c][1]} (0x{c:02x})" for c in dtypes)
        raise Lenet5Error(f"{name}: IDX data type 0x{dtype_code:02x} is not {allowed}")
    dtype = _TYPES[dtype_code][0]
    if expect_ndim is not None and ndim != expect_ndim:
        raise Lenet5Error(f"{name}: IDX header has {ndim} dimensions, expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise Lenet5Error(f"{name} is truncated (IDX header incomplete)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise Lenet5Error(
            f"{name} is {what}: {len(data):,} bytes, header {shape} needs {expected:,}; "
            "fetch it again (`lenet5 prepare`)"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx(path: Path, expect_ndim: int | None = None,
             dtypes: tuple[int, ...] = (UBYTE,), file_md5: bool = False) -> IdxFile:
    """Read, hash and parse one IDX file (``file_md5``: also the MD5 of the file as stored)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise Lenet5Error(f"cannot read {path}: {e.strerror or e}") from None
    data = decompress(raw, path)
    array = parse_idx(data, str(path), expect_ndim, dtypes)
    return IdxFile(array=array, sha256=hashlib.sha256(data).hexdigest(),
                   file_md5=hashlib.md5(raw).hexdigest() if file_md5 else None)
