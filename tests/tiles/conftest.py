"""Fixtures of the tile tests: the hostile layout of the traversal tests, on files and in S3."""

from __future__ import annotations

import obstore
import pytest
import seaweed
from hostile import Layout, make_layout
from support import S3_BUCKET, s3_settings_for

from iiif_server import config


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """root/ with images and symlinks, and outside/ next to it with the bait."""
    return make_layout(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def hostile_s3_settings(weed: seaweed.Weed, layout: Layout,
                        tmp_path_factory: pytest.TempPathFactory) -> config.Settings:
    """The traversal layout in S3: its root below one prefix, the bait below another of the same bucket."""
    keys = seaweed.upload_folder(weed.store(S3_BUCKET, "hostile/root"), layout.root)
    assert "alias.png" in keys and "link.png" not in keys
    obstore.put(weed.store(S3_BUCKET, "hostile/outside"), "secret.png", layout.secret)
    obstore.put(weed.store(S3_BUCKET, "hostile/root"), ".hidden/inside.png", (layout.root / "inside.png").read_bytes())
    return s3_settings_for(weed, tmp_path_factory.mktemp("hostile-s3-data"), "hostile/root")

