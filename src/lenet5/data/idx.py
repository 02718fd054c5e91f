"""Reading the IDX format of MNIST and its siblings (gzip-compressed or raw).

IDX: a 4-byte magic ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes,
then the data. MNIST uses type 0x08 (unsigned byte): ndim 3 for images, 1 for labels.
QMNIST's labels are type 0x0C (big-endian int32), ndim 2: one row of 8 columns per image.

Reading is bounded in memory whatever the file holds: the header is read first and checked
against what the caller expects (an :class:`IdxFormat`: the shape, the types, the most
entries), then exactly the data it announces is decompressed, streaming, into one buffer.
A file that expands to more than its header says (a gzip bomb) is refused one byte later.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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
# The most content read when the caller knows no bound (the largest file of a registered
# dataset, EMNIST Digits' training images, is 188 MB).
MAX_BYTES = 512 * 2**20


@dataclass(frozen=True)
class IdxFormat:
    """What an IDX file must be: its ``shape``, None where any size goes (None for the whole
    shape: any); the IDX types allowed; at most ``max_count`` entries along the first axis."""

    shape: tuple[int | None, ...] | None = None
    dtypes: tuple[int, ...] = (UBYTE,)
    max_count: int | None = None

    def max_bytes(self) -> int:
        """The most content, header included, a file of this format holds (``MAX_BYTES``
        where the format does not bound it)."""
        if self.shape is None or not self.shape:
            return MAX_BYTES
        count = self.shape[0] if self.shape[0] is not None else self.max_count
        if count is None or None in self.shape[1:]:
            return MAX_BYTES
        itemsize = max(_TYPES[c][0].itemsize for c in self.dtypes)
        return 4 + 4 * len(self.shape) + count * math.prod(self.shape[1:]) * itemsize


ANY = IdxFormat()


@dataclass(frozen=True)
class IdxFile:
    array: np.ndarray  # shape from the header; uint8 unless other types were allowed
    sha256: str  # of the decompressed content
    file_md5: str | None = None  # of the file as stored (e.g. the .gz), when asked for


def _dims(shape: tuple[int | None, ...]) -> str:
    return "x".join("N" if d is None else str(d) for d in shape)


def _header(stream: BinaryIO, name: str, fmt: IdxFormat) -> tuple[bytes, tuple[int, ...], np.dtype]:
    """Read and check the header: the magic, the type, the shape, the size it implies."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise Lenet5Error(f"{name} is not an IDX file (wrong magic number)")
    dtype_code, ndim = magic[2], magic[3]
    if dtype_code not in fmt.dtypes or dtype_code not in _TYPES:
        allowed = " or ".join(f"{_TYPES[c][1]} (0x{c:02x})" for c in fmt.dtypes)
        raise Lenet5Error(f"{name}: IDX data type 0x{dtype_code:02x} is not {allowed}")
    if ndim == 0 or (fmt.shape is not None and ndim != len(fmt.shape)):
        expected = len(fmt.shape) if fmt.shape is not None else "1 or more"
        raise Lenet5Error(f"{name}: IDX header has {ndim} dimensions, expected {expected}")
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise Lenet5Error(f"{name} is truncated (IDX header incomplete)")
    shape = struct.unpack(f">{ndim}I", sizes)
    if fmt.shape is not None and any(w is not None and w != d for w, d in zip(fmt.shape, shape)):
        raise Lenet5Error(f"{name}: IDX header has shape {_dims(shape)}, expected "
                          f"{_dims(fmt.shape)}; is it the right file?")
    dtype = _TYPES[dtype_code][0]
    nbytes = 4 + 4 * ndim + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if fmt.max_count is not None and shape[0] > fmt.max_count:
        raise Lenet5Error(f"{name}: IDX header says {shape[0]:,} entries, more than the "
                          f"{fmt.max_count:,} this file holds")
    if nbytes > (bound := fmt.max_bytes()):
        raise Lenet5Error(f"{name}: IDX header has shape {_dims(shape)} ({nbytes:,} bytes), "
                          f"over the {bound:,}-byte bound")
    return magic + sizes, shape, dtype


def _read(stream: BinaryIO, name: str, fmt: IdxFormat) -> tuple[np.ndarray, str]:
    """The array and the content SHA-256, reading no more than the header announces + 1."""
    header, shape, dtype = _header(stream, name, fmt)
    body = bytearray(math.prod(shape) * dtype.itemsize)
    view, got = memoryview(body), 0
    while got < len(body) and (n := stream.readinto(view[got:])):
        got += n
    expected = len(header) + len(body)
    if got < len(body):
        raise Lenet5Error(f"{name} is truncated: {len(header) + got:,} bytes, header "
                          f"{shape} needs {expected:,}; fetch it again (`lenet5 prepare`)")
    if stream.read(1):
        raise Lenet5Error(f"{name} is longer than its header says ({expected:,} bytes for "
                          f"{shape}); fetch it again (`lenet5 prepare`)")
    sha256 = hashlib.sha256(header)
    sha256.update(body)
    array = np.frombuffer(body, dtype=dtype).reshape(shape)
    return (array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))), sha256.hexdigest()


def parse_idx(data: bytes, name: str = "<bytes>", fmt: IdxFormat = ANY) -> np.ndarray:
    """Parse IDX bytes into an array of one of the allowed types (only unsigned byte by
    default), in native byte order; refuse a wrong magic, type, shape or length."""
    return _read(io.BytesIO(data), name, fmt)[0]


def read_idx(path: Path, fmt: IdxFormat = ANY, file_md5: bool = False) -> IdxFile:
    """Read, hash and parse one IDX file, gzip detected by its magic, not its name
    (``file_md5``: also the MD5 of the file as stored)."""
    try:
        with open(path, "rb") as f:
            if f.peek(2)[:2] != _GZIP_MAGIC:
                array, sha256 = _read(f, str(path), fmt)
            else:
                try:
                    with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                        array, sha256 = _read(gz, str(path), fmt)
                except (EOFError, gzip.BadGzipFile, zlib.error) as e:
                    raise Lenet5Error(f"{path} is truncated or corrupt ({e}); delete it and "
                                      "fetch it again (`lenet5 prepare`)") from None
            md5 = None
            if file_md5:
                f.seek(0)
                md5 = hashlib.file_digest(f, "md5").hexdigest()
    except OSError as e:
        raise Lenet5Error(f"cannot read {path}: {e.strerror or e}") from None
    return IdxFile(array=array, sha256=sha256, file_md5=md5)
