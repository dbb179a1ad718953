"""Stop a subprocess inside SQLite's own locking, to force one interleaving of two opens.

For the tests' subprocesses only: ``pause_before_reserved`` changes nothing in
embargo-bot. It wraps the default VFS (through SQLite's public C structures, via
ctypes on the library Python's sqlite3 module uses) so that the first time this
process asks for the RESERVED lock on a database file it stops there, still
holding SHARED. On a new store that moment is inside ``PRAGMA journal_mode =
WAL``: the file exists, page 1 is read, the switch to WAL is not yet written.
SQLite asks for RESERVED only in rollback-journal mode, so nothing else stops.

If another process takes RESERVED meanwhile (it is switching the same file to
WAL and waits, on its busy timeout, for this one's SHARED), SQLite answers this
one "database is locked" at once: a reader cannot wait for a writer that waits
for it. That is the race of issue 9, fault 8, made certain.
"""

from __future__ import annotations

import _sqlite3
import ctypes
import time
from pathlib import Path

SQLITE_OK = 0
SQLITE_OPEN_MAIN_DB = 0x100
SQLITE_LOCK_RESERVED = 2

_METHODS = [
    "xClose",
    "xRead",
    "xWrite",
    "xTruncate",
    "xSync",
    "xFileSize",
    "xLock",
    "xUnlock",
    "xCheckReservedLock",
    "xFileControl",
    "xSectorSize",
    "xDeviceCharacteristics",
    "xShmMap",
    "xShmLock",
    "xShmBarrier",
    "xShmUnmap",
    "xFetch",
    "xUnfetch",
]


class IoMethods(ctypes.Structure):
    """sqlite3_io_methods, version 3."""

    _fields_ = [("iVersion", ctypes.c_int), *((name, ctypes.c_void_p) for name in _METHODS)]


class File(ctypes.Structure):
    """sqlite3_file: each VFS's file begins with its methods."""

    _fields_ = [("pMethods", ctypes.POINTER(IoMethods))]


class Vfs(ctypes.Structure):
    """The head of sqlite3_vfs, as far as xOpen."""

    _fields_ = [
        ("iVersion", ctypes.c_int),
        ("szOsFile", ctypes.c_int),
        ("mxPathname", ctypes.c_int),
        ("pNext", ctypes.c_void_p),
        ("zName", ctypes.c_char_p),
        ("pAppData", ctypes.c_void_p),
        ("xOpen", ctypes.c_void_p),
    ]


OPEN = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(File),
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_int),
)
LOCK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(File), ctypes.c_int)
CHECK_RESERVED = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(File), ctypes.POINTER(ctypes.c_int))

# Everything C may call back into must outlive the process's connections.
_kept: list[object] = []


def wait_for(mark: Path, longest: float = 20.0) -> None:
    """Until another process has made the file ``mark`` (or, in case it died, a while)."""
    deadline = time.monotonic() + longest
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.001)


def pause_before_reserved(ready: Path, paused: Path, longest: float) -> None:
    """From now on, the first RESERVED request of this process waits.

    It waits for the file ``ready``, touches ``paused``, then waits until another
    process holds RESERVED on the same file, or ``longest`` seconds have passed.
    """
    library = ctypes.CDLL(_sqlite3.__file__)
    library.sqlite3_vfs_find.restype = ctypes.POINTER(Vfs)
    library.sqlite3_vfs_find.argtypes = [ctypes.c_char_p]
    vfs = library.sqlite3_vfs_find(None).contents
    real_open = OPEN(vfs.xOpen)
    state = {"done": False}

    def wrapped_open(
        pvfs: int | None,
        name: int | None,
        file: ctypes._Pointer[File],
        flags: int,
        out: ctypes._Pointer[ctypes.c_int],
    ) -> int:
        rc: int = real_open(pvfs, name, file, flags, out)
        if rc == SQLITE_OK and flags & SQLITE_OPEN_MAIN_DB and file.contents.pMethods:
            file.contents.pMethods = _with_pausing_lock(file.contents.pMethods.contents)
        return rc

    def _with_pausing_lock(methods: IoMethods) -> ctypes._Pointer[IoMethods]:
        copy = IoMethods.from_buffer_copy(methods)
        real_lock = LOCK(methods.xLock)
        check_reserved = CHECK_RESERVED(methods.xCheckReservedLock)

        def lock(file: ctypes._Pointer[File], level: int) -> int:
            if level == SQLITE_LOCK_RESERVED and not state["done"]:
                state["done"] = True
                wait_for(ready)
                paused.touch()
                deadline = time.monotonic() + longest
                held = ctypes.c_int(0)
                while time.monotonic() < deadline:
                    check_reserved(file, ctypes.byref(held))
                    if held.value:
                        break
                    time.sleep(0.002)
            result: int = real_lock(file, level)
            return result

        callback = LOCK(lock)
        copy.xLock = ctypes.cast(callback, ctypes.c_void_p).value
        _kept.extend((copy, callback, real_lock, check_reserved))
        return ctypes.pointer(copy)

    opener = OPEN(wrapped_open)
    _kept.extend((opener, real_open))
    vfs.xOpen = ctypes.cast(opener, ctypes.c_void_p).value
