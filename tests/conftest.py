from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.server.common import make_deps
from shared.server.registry import ServerDeps


@pytest.fixture(scope="session", autouse=True)
def jesse_cache(tmp_path_factory) -> None:
    """Jesse keeps a file cache in storage/temp of the current folder unless told otherwise: not in the repo."""
    os.environ.setdefault("JESSE_CACHE_DIR", str(tmp_path_factory.mktemp("jesse-cache")))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TRADING_MCP_HOME for each test; the user's own folder is never touched."""
    monkeypatch.setenv("TRADING_MCP_HOME", str(tmp_path))
    monkeypatch.setenv("TRADING_MCP_CONFIG", str(tmp_path / "config.json"))
    return tmp_path


@pytest.fixture
def deps(home: Path) -> ServerDeps:
    d = make_deps("test-server", home)
    yield d
    d.store.close()
