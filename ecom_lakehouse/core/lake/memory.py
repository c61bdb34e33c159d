"""Giving freed memory back to the operating system between files.

A file's steps allocate and free hundreds of MB (workbook parsing, Arrow batches, DuckDB).
glibc and Arrow's pool keep freed pages for reuse, so one file's leftovers would add to the next
file's peak. Releasing them before each file-sized step (a few milliseconds) keeps the peak to
what the step itself needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import pyarrow as pa


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_freed_memory() -> None:
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
