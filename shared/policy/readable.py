"""Which files tools may read: only below `$TRADING_MCP_HOME/imports/` and the folders a person listed in
`import_config.folders`, judged after links and `..` are resolved.

Even inside those folders, system trees (/proc, /etc, /sys, /dev, ...), hidden files and folders (any name
starting with a dot) and `.env` files are refused. Policy only: no file is read here except to open it, and the
errors name the path asked for and the allowed folders, never anything inside a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.errors import TradingMcpError

# Trees of the operating system (and of macOS, where /etc is a link to /private/etc): never read, never listed.
SYSTEM_TREES: tuple[str, ...] = (
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/boot",
    "/run",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr",
    "/var/run",
    "/private/etc",
    "/private/var/run",
)
IMPORTS_FOLDER = "imports"
_HOW_TO_ADD = (
    'add its folder with update_config({"import_config.folders": [...the current folders..., "/path/to/folder"]}), '
    "which asks the person to confirm"
)


class FileAccessError(TradingMcpError):
    """A tool was asked to read a file it may not read. Nothing was read."""


def system_tree(path: str | Path) -> str | None:
    """The system tree that holds `path` (normalised, not resolved), or None."""
    text = os.path.normpath(str(path))
    for tree in SYSTEM_TREES:
        if text == tree or text.startswith(tree + "/"):
            return tree
    return None


def check_folder(text: str) -> str:
    """A configured import folder: absolute after `~` expansion, not `/`, not in a system tree. Returns it
    normalised; raises ValueError (for the configuration's validator) otherwise."""
    folder = os.path.normpath(os.path.expanduser(text))
    if not os.path.isabs(folder):
        raise ValueError(f"{text!r} is not an absolute path; write it in full, e.g. /home/me/candles or ~/candles")
    if folder == "/":
        raise ValueError("'/' would allow reading every file; name the folder that holds the candle files")
    tree = system_tree(folder) or system_tree(os.path.realpath(folder))
    if tree is not None:
        raise ValueError(f"{text!r} is inside the system tree {tree}, which is never readable")
    return folder


def is_hidden_or_env(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(".") or lowered.endswith(".env")


@dataclass(frozen=True)
class ReadableFolders:
    """The folders tools may read: `home/imports` (created on first use) and the configured ones."""

    home: Path
    folders: tuple[str, ...] = ()

    @property
    def imports(self) -> Path:
        return Path(self.home) / IMPORTS_FOLDER

    def describe(self) -> str:
        return ", ".join([str(self.imports), *self.folders])

    def resolve(self, requested: str) -> Path:
        """The real path of `requested` (relative paths are taken inside imports/) when tools may read it."""
        self.imports.mkdir(parents=True, exist_ok=True)
        try:
            raw = Path(requested).expanduser()
            raw = raw if raw.is_absolute() else self.imports / raw
            real = raw.resolve()
            roots = [Path(folder).resolve() for folder in (str(self.imports), *self.folders)]
        except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte, an unknown ~user
            raise FileAccessError(f"{requested!r} is not a usable path. Nothing was read.") from None
        tree = system_tree(raw) or system_tree(real)
        if tree is not None:
            raise FileAccessError(
                f"{requested!r} is refused: files under {tree} (and /proc, /sys, /dev, /etc and other system trees) "
                f"are never read. Candle files belong in {self.imports}. Nothing was read."
            )
        root = next((r for r in roots if real == r or real.is_relative_to(r)), None)
        if root is None:
            raise FileAccessError(
                f"{requested!r} is outside the folders tools may read ({self.describe()}), after following links "
                f"and '..'. Copy the file into {self.imports}, or {_HOW_TO_ADD}. Nothing was read."
            )
        if any(is_hidden_or_env(part) for part in real.relative_to(root).parts):
            raise FileAccessError(
                f"{requested!r} is refused: hidden files and folders (names starting with '.') and .env files are "
                "never read, even inside an allowed folder. Give the candle CSV a plain name such as "
                f"btc-usdt-1m.csv in {self.imports}. Nothing was read."
            )
        return real


def open_regular(path: Path, requested: str | None = None) -> BinaryIO:
    """Open a regular file for reading without following a final link (so a file swapped for a link after the
    check is not read) and without blocking on a pipe or device."""
    shown = requested if requested is not None else str(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileAccessError(f"No such file: {shown}. Give the path of a CSV file in {path.parent}.") from None
    except OSError as e:
        raise FileAccessError(f"{shown} cannot be opened ({e.strerror}). Nothing was read.") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileAccessError(f"{shown} is not a regular file (a folder, pipe or device). Give a CSV file.")
        return os.fdopen(fd, "rb")
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
