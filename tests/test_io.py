"""Atomic writes keep the usual file mode (not mkstemp's 0600)."""

import os

from lenet5.io import atomic_write_bytes


def test_written_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"x"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
