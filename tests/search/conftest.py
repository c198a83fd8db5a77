"""The Content Search tests' shared fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from search_world import make_lists, make_transports

from iiif_server.auth.tokens import TokenStore
from iiif_server.db.catalogue import Catalogue


@pytest.fixture
async def setup(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, TokenStore, Catalogue]]:
    """The transport lists (tests/search/search_world.py) on each catalogue backend."""
    async for world in make_transports(database_url, tmp_path):
        yield world


@pytest.fixture
async def lists(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, TokenStore, Catalogue]]:
    """The name lists of issue 20 (tests/search/search_world.py) on each catalogue backend."""
    async for world in make_lists(database_url, tmp_path):
        yield world
