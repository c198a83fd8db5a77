"""A read-only FUSE view of a folder that folds names as Windows shares (SMB) and macOS do.

Lookups ignore case and Unicode normal form (`Mixed/RR-DOC` finds `mixed/rr-doc`); listings keep
each name as stored. Run as `python tests/foldfs.py BACKING MOUNTPOINT` (foreground; unmount with
`fusermount3 -u MOUNTPOINT`). Needs /dev/fuse, libfuse3 and mfusepy.
"""

from __future__ import annotations

import errno
import os
import sys
import unicodedata
from typing import Any

import mfusepy as fuse


def fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


class FoldingView(fuse.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, backing: str) -> None:
        self.backing = os.path.realpath(backing)

    def _real(self, path: str) -> str:
        """The backing path of a folded lookup, component by component."""
        real = self.backing
        for part in [p for p in path.split("/") if p]:
            exact = os.path.join(real, part)
            if os.path.lexists(exact):
                real = exact
                continue
            try:
                names = os.listdir(real)
            except OSError as exc:
                raise fuse.FuseOSError(exc.errno or errno.ENOENT) from exc
            match = next((n for n in names if fold(n) == fold(part)), None)
            if match is None:
                raise fuse.FuseOSError(errno.ENOENT)
            real = os.path.join(real, match)
        return real

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        st = os.lstat(self._real(path))
        out = {key: getattr(st, key) for key in ("st_mode", "st_nlink", "st_size", "st_uid", "st_gid", "st_ino")}
        return out | {key: getattr(st, key + "_ns") for key in ("st_atime", "st_mtime", "st_ctime")}

    def readdir(self, path: str, fh: Any) -> list[tuple[str, dict[str, int], int]]:
        """Each name with its inode (with `use_ino`, an entry without one is skipped by readdir(3))."""
        real = self._real(path)
        names = [".", "..", *os.listdir(real)]
        out = []
        for name in names:
            st = os.lstat(os.path.join(real, name))
            out.append((name, {"st_mode": st.st_mode, "st_ino": st.st_ino}, 0))
        return out

    def readlink(self, path: str) -> str:
        return os.readlink(self._real(path))

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise fuse.FuseOSError(errno.EROFS)
        return os.open(self._real(path), os.O_RDONLY)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0


if __name__ == "__main__":
    fuse.FUSE(FoldingView(sys.argv[1]), sys.argv[2], foreground=True, ro=True, nothreads=True, use_ino=True)
