"""Where the configuration lives, how it is loaded (cached by file signature) and saved (validated, atomic)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shared.config.file import config_to_json, decode_config_bytes, load_config_text, validate_config_data
from shared.config.models import TradingConfig
from shared.errors import ConfigError
from shared.state.files import atomic_write_text


def trading_home() -> Path:
    """`$TRADING_MCP_HOME`, default `~/.trading-mcp`; created on first use."""
    home = Path(os.environ.get("TRADING_MCP_HOME") or Path.home() / ".trading-mcp").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def config_path() -> Path:
    explicit = os.environ.get("TRADING_MCP_CONFIG")
    return Path(explicit).expanduser() if explicit else trading_home() / "config.json"


class ConfigStore:
    """Loads the configuration file once and again only when its (mtime, size, inode) changes."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else config_path()
        self._cached: TradingConfig | None = None
        self._signature: tuple[int, int, int] | None = None
        self.notes: list[str] = []  # what was migrated from older key names when the file was last read

    def _stat_signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def load(self) -> TradingConfig:
        """The current configuration; a missing file is created with the defaults."""
        signature = self._stat_signature()
        if signature is not None and signature == self._signature and self._cached is not None:
            return self._cached
        if signature is None:
            with self._locked():
                if not self.path.exists():
                    atomic_write_text(self.path, config_to_json(TradingConfig()))
            signature = self._stat_signature()
        cfg, notes = self._read()
        self._cached, self._signature, self.notes = cfg, signature, notes
        return cfg

    def _read(self) -> tuple[TradingConfig, list[str]]:
        source = str(self.path)
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            why = e.strerror or type(e).__name__
            raise ConfigError(f"{source} cannot be read ({why}); fix it or delete it.") from None
        return load_config_text(decode_config_bytes(raw, source), source)

    def save(self, cfg: TradingConfig) -> None:
        """Validate again (the model may have been built loosely) and replace the file atomically."""
        checked = validate_config_data(cfg.model_dump(mode="json"))
        with self._locked():
            atomic_write_text(self.path, config_to_json(checked))
        self._cached, self._signature, self.notes = checked, self._stat_signature(), []

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[TradingConfig, TradingConfig]:
        """Read-modify-write under an exclusive lock, so concurrent writers never lose each other's changes.

        `change` gets the current data as plain JSON and returns the new data. Returns (old, new). On any error
        nothing is written.
        """
        if not self.path.exists():
            self.load()
        with self._locked():
            old, _ = self._read()
            new = validate_config_data(change(old.model_dump(mode="json")), "configuration change")
            atomic_write_text(self.path, config_to_json(new))
        self._cached, self._signature, self.notes = new, self._stat_signature(), []
        return old, new

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def load_config(path: Path | None = None) -> TradingConfig:
    try:
        return ConfigStore(path).load()
    except OSError as e:
        raise ConfigError(f"Cannot read or create the configuration at {path or config_path()}: {e}") from e
