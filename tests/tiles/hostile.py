"""The hostile layout of the traversal tests (not a test module): an image root full of links that leave
it, and the bait outside it. The fixture `layout` (tests/tiles/conftest.py) makes it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from support import quadrants

SECRET_SIZE = (321, 123)


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path
    outside: Path
    secret: bytes  # the outside image's file bytes


def make_layout(base: Path) -> Layout:
    """root/ with images and symlinks, and outside/ next to it with the bait."""
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    quadrants(*SECRET_SIZE).pngsave(str(outside / "secret.png"))
    quadrants(64, 48).pngsave(str(root / "inside.png"))
    quadrants(32, 32).pngsave(str(root / "sub" / "deep.png"))
    (root / "link.png").symlink_to(outside / "secret.png")  # a file leaving the root
    (root / "rellink.png").symlink_to(Path("..") / "outside" / "secret.png")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)  # a folder leaving the root
    (root / "sub" / "up").symlink_to(Path("..") / "..", target_is_directory=True)  # root/sub/up -> base
    (root / "alias.png").symlink_to(root / "inside.png")  # stays inside: allowed
    (root / "loop.png").symlink_to(root / "loop.png")
    return Layout(root, outside, (outside / "secret.png").read_bytes())
