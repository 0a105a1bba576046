"""What travels to a Ray cluster and runs there: the Jesse actor, and how a task's arguments are packed by the
server (candles as object-store references, user strategies as source) and unpacked on a node.

Nodes have none of the server's files. The server loads a spec's candles from its own CandleStore (engine.load_rows)
and passes them as an object reference, which Ray resolves to the array on the node (copied to a node once, then read
from its object store); the actor hands them to engine.run_backtest(spec, rows). A user strategy's file is sent as
text and written under the actor's folder, named by its content hash, so a changed file is a new module; errors that
name the node's copy are reported with the server's path. Ray is imported only by the functions that need it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from jesse_mcp.backtesting import worker_side

ENGINE = "jesse_mcp.backtesting.engine"
ROWS_TASKS = ("run_backtest", "run_many")  # engine functions that take `rows` (one array, or one per spec)


# --- on the server: packing a task -----------------------------------------------------------------------------
def _with_source(spec: dict[str, Any]) -> dict[str, Any]:
    strategy = spec.get("strategy") or {}
    if strategy.get("builtin") or not strategy.get("path"):
        return spec  # built-ins are part of the installed project on every node
    source = Path(strategy["path"]).read_text()
    return {**spec, "strategy": {**strategy, "source": source}}


def pack(module: str, func: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The kwargs to send (user strategies with their source) and the specs whose candles go with them, in order."""
    if module != ENGINE:
        return kwargs, []
    if func == "run_backtest":
        spec = _with_source(kwargs["spec"])
        return {**kwargs, "spec": spec}, [spec]
    if func == "run_many":
        specs = [_with_source(s) for s in kwargs["specs"]]
        return {**kwargs, "specs": specs}, specs
    if func == "describe_user_strategies":
        files = kwargs["files"]
        return {**kwargs, "sources": {name: Path(path).read_text() for name, path in files.items()}}, []
    return kwargs, []


# --- on a node: unpacking it ----------------------------------------------------------------------------------
def _materialize(folder: Path, original: str, source: str) -> str:
    """Write a shipped strategy under `folder`, keeping its file name (or package folder) so the engine names its
    module and class the same way as on the server."""
    path = Path(original)
    tail = Path(path.parent.name, path.name) if path.name == "__init__.py" else Path(path.name)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    local = folder / "strategies" / digest / tail
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(local)
    return str(local)


def _local_spec(folder: Path, spec: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    strategy = spec.get("strategy") or {}
    if "source" not in strategy:
        return spec
    local = _materialize(folder, strategy["path"], strategy["source"])
    paths[local] = strategy["path"]
    rest = {k: v for k, v in strategy.items() if k != "source"}
    return {**spec, "strategy": {**rest, "path": local}}


def unpack(
    folder: Path, module: str, func: str, kwargs: dict[str, Any], rows: tuple[Any, ...]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The engine's kwargs on this node, and node path -> server path of every strategy written here."""
    paths: dict[str, str] = {}
    if module != ENGINE:
        return kwargs, paths
    # the object store's arrays are read-only; Jesse and transforms write (a portfolio's: symbol -> array)
    private = [{k: np.array(v) for k, v in r.items()} if isinstance(r, dict) else np.array(r) for r in rows]
    if func == "run_backtest":
        return {**kwargs, "spec": _local_spec(folder, kwargs["spec"], paths), "rows": private[0]}, paths
    if func == "run_many":
        specs = [_local_spec(folder, s, paths) for s in kwargs["specs"]]
        return {**kwargs, "specs": specs, "rows": private}, paths
    if func == "describe_user_strategies":
        files = {}
        for name, original in kwargs["files"].items():
            files[name] = _materialize(folder, original, kwargs["sources"][name])
            paths[files[name]] = original
        return {"files": files}, paths
    return kwargs, paths


def server_paths(value: Any, paths: dict[str, str]) -> Any:
    """`value` with every node path of a shipped strategy replaced by the server's path (in error texts)."""
    if isinstance(value, str):
        for local, original in paths.items():
            value = value.replace(local, original)
        return value
    if isinstance(value, dict):
        return {k: server_paths(v, paths) for k, v in value.items()}
    return value


# --- the actor ------------------------------------------------------------------------------------------------
class JesseActor:
    """One slot on the cluster: imports Jesse once, runs one task at a time (the pool sees to that), and buffers
    the progress the task reports so the server can poll it (the actor runs two threads: a task and a poll)."""

    def __init__(self, warmup: tuple[str, ...]) -> None:
        started = time.perf_counter()
        self.folder = Path(tempfile.gettempdir()) / "trading-mcp-ray" / str(os.getpid())
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chdir(self.folder)  # Jesse writes relative paths (storage/...)
        os.environ.setdefault("JESSE_CACHE_DIR", str(self.folder / "cache"))
        self._reports: list[tuple[float, float, str]] = []
        self._lock = threading.Lock()
        # engine code reports through report_progress: here to this actor, whose send() keeps it for progress()
        worker_side.report_progress_to(self)
        for name in warmup:
            importlib.import_module(name)
        self.ready_after_s = time.perf_counter() - started

    def send(self, message: tuple) -> None:
        with self._lock:
            self._reports.append((float(message[1]), float(message[2]), str(message[3])))

    def ready(self) -> dict[str, Any]:
        import ray

        return {"ready_after_s": self.ready_after_s, "pid": os.getpid(), "node": ray.util.get_node_ip_address()}

    def progress(self) -> list[tuple[float, float, str]]:
        with self._lock:
            out, self._reports = self._reports, []
        return out

    def run(self, module: str, func: str, kwargs: dict[str, Any], *rows: Any) -> tuple:
        paths: dict[str, str] = {}
        try:
            local, paths = unpack(self.folder, module, func, kwargs, rows)
            result = getattr(importlib.import_module(module), func)(**local)
            return ("ok", server_paths(result, paths) if func == "describe_user_strategies" else result)
        except Exception as e:  # the task's own failure travels back as data, like a local worker's
            return ("error", server_paths(f"{type(e).__name__}: {e}", paths), traceback.format_exc())
