"""The C allocator, told to give large blocks back: a 20 MB PDF is a 27 MB message.

glibc serves a block above its mmap threshold with a mapping of its own,
unmapped when freed. By default the threshold follows the largest such block
freed, up to 32 MiB: once the first copy of a 27 MB message is freed, the
next ones (ours and aiosmtplib's several) come from the heap, which keeps the
pages freed in it and gives back only a free top of more than twice the
threshold. The service's resident memory then climbs by a copy or two of the
message as it sends, more the more it sends. A threshold set once stays put,
so every such copy is mapped and unmapped on its own; blocks under it, every
small message and its copies, stay on the heap, as fast as before.
"""

from __future__ import annotations

import ctypes
import sys

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_BLOCK = 1024 * 1024


def give_back_large_blocks() -> bool:
    """Set glibc's mmap threshold for this process; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)  # the C library the interpreter runs on
    if not hasattr(libc, "gnu_get_libc_version"):
        return False  # musl and others: their mallopt is not glibc's
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK))
