"""Names: how an identifier's segments meet file systems that fold them or limit their length.

`fold` is the key access decisions compare spellings by: a share that ignores case (SMB, macOS) or
Unicode normal form opens one file under many spellings, so every spelling must find that file's
tier. `on_disk` is the folder or file name a segment is stored under: itself, or, past what one
name may hold on common file systems (255 bytes), a bounded hidden name made of its hash, which no
identifier can name directly (hidden segments are refused).
"""

from __future__ import annotations

import hashlib
import unicodedata

NAME_MAX = 255  # bytes of one name on ext4, XFS, Btrfs, ZFS; NTFS and APFS allow 255 UTF-16 units or more
LONG = ".long-"  # hidden: a segment too long to be a name is stored under this prefix and its hash
_DIGEST = 16  # bytes of the hash: 32 hex digits


def fold(text: str) -> str:
    """Compatibility-normalised and case-folded: broader than any file system's folding, so that two
    spellings one file system may take for the same name always share a key."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def encoded(text: str) -> bytes:
    """The bytes a name is written as (a name read from disk that is not UTF-8 keeps its bytes)."""
    return text.encode("utf-8", "surrogateescape")


def fits(name: str) -> bool:
    return len(encoded(name)) <= NAME_MAX


def on_disk(segment: str, suffix: str = "") -> str:
    """The name `segment` (plus `suffix`, e.g. `.tif`) is stored under: itself when it fits in one name,
    else `.long-<hash>-<its beginning>` cut to fit, the same for every run and replica."""
    if fits(segment + suffix):
        return segment + suffix
    digest = hashlib.blake2b(encoded(segment), digest_size=_DIGEST).hexdigest()
    head = f"{LONG}{digest}-"
    room = NAME_MAX - len(head) - len(encoded(suffix))
    return head + truncated(segment, room) + suffix


def truncated(text: str, limit: int) -> str:
    """The longest beginning of `text` whose bytes fit in `limit`, cut between characters."""
    data = encoded(text)
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def copy_path(*segments: str) -> str:
    """Where an access copy (or the folder of a collection's or document's copies) lies below the image
    root: `collection/document/page.tif` with each name as `on_disk` stores it."""
    *folders, last = segments
    names = [on_disk(part) for part in folders]
    names.append(on_disk(last, ".tif") if len(segments) == 3 else on_disk(last))
    return "/".join(names)


def readable(name: str) -> bool:
    """Whether a name read from disk is valid UTF-8 (undecodable bytes come as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(path: object) -> str:
    """A path as a report line shows it: bytes that are not UTF-8 as U+FFFD, control characters escaped
    (a newline in a name never splits a line)."""
    text = encoded(str(path)).decode("utf-8", "replace")
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 0x7F else c for c in text)
