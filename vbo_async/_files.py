"""What kind of file a path names, for the places that must read a regular file (pure)."""

from __future__ import annotations

import os
import stat

__all__ = ["not_a_file", "open_flags"]


def not_a_file(mode: int) -> str | None:
    """What a file of ``mode`` (`os.stat_result.st_mode`) is when it is no regular file, which
    a targets file or a CA bundle must be (``directory``, ``named pipe``...); None for a
    regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    )
    return next((kind for test, kind in kinds if test(mode)), "special file")


def open_flags(*names: str) -> int:
    """The flags of ``os.open`` named, those the system has (Windows has no O_NONBLOCK,
    O_NOCTTY, O_CLOEXEC or O_NOFOLLOW, only Windows O_BINARY)."""
    flags = 0
    for name in names:
        flags |= getattr(os, name, 0)
    return flags
