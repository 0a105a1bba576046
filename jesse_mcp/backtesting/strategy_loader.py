"""Strategy classes for a Jesse worker: the built-ins by module and class, a user's strategy file imported once per
modification time, and the description (hyperparameters, summary) of user files. Called inside workers (Jesse is
imported inside the functions)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import sys
from pathlib import Path
from typing import Any


class StrategyLoadError(Exception):
    """A user's strategy file could not be loaded or does not define a Jesse Strategy."""


# --- strategy classes -----------------------------------------------------------------------------------------
_user_modules: dict[str, tuple[float, Any]] = {}


def _load_user_module(path: Path) -> Any:
    mtime = path.stat().st_mtime
    cached = _user_modules.get(str(path))
    if cached and cached[0] == mtime:
        return cached[1]
    digest = hashlib.sha1(f"{path}:{mtime}".encode()).hexdigest()[:12]
    module_name = (
        f"trading_mcp_user_strategies.{path.stem if path.name != '__init__.py' else path.parent.name}_{digest}"
    )
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{path} is not a Python file that can be imported.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise StrategyLoadError(f"{path} failed to import: {type(e).__name__}: {e}") from None
    _user_modules[str(path)] = (mtime, module)
    return module


def _strategy_class_in(module: Any, path: Path, name: str) -> type:
    from jesse.strategies import Strategy

    from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy

    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Strategy)
        and obj not in (Strategy, RiskManagedStrategy)
        and obj.__module__ == module.__name__
    ]
    if not candidates:
        raise StrategyLoadError(
            f"{path} does not define a Jesse Strategy: add a class that subclasses jesse.strategies.Strategy "
            "(or jesse_mcp.backtesting.strategies.base.RiskManagedStrategy to get risk-profile sizing)."
        )
    if len(candidates) == 1:
        return candidates[0]
    wanted = name.replace("_", "").lower()
    for cls in candidates:
        if cls.__name__.lower() == wanted:
            return cls
    names = ", ".join(c.__name__ for c in candidates)
    raise StrategyLoadError(
        f"{path} defines several Strategy classes ({names}); keep one, or name one after the file ({name})."
    )


def strategy_class(strategy: dict[str, Any]) -> type:
    if strategy.get("builtin"):
        return getattr(importlib.import_module(strategy["module"]), strategy["class_name"])
    path = Path(strategy["path"])
    return _strategy_class_in(_load_user_module(path), path, strategy["name"])


def _param_type(value: Any) -> str:
    return "int" if value is int or (isinstance(value, int) and not isinstance(value, bool)) else "float"


def describe_user_strategies(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """name -> description of each user strategy file, or {"error": ...} for a file that cannot be used."""
    from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy

    out: dict[str, dict[str, Any]] = {}
    for name, file in files.items():
        path = Path(file)
        try:
            cls = strategy_class({"name": name, "builtin": False, "path": file})
            raw = cls.hyperparameters(cls.__new__(cls))  # Jesse defines it as an instance method
            params = []
            for p in raw or []:
                if not isinstance(p, dict) or "name" not in p or "default" not in p:
                    raise StrategyLoadError(f"{path}: each hyperparameter needs at least 'name' and 'default'.")
                numeric = (int, float)
                if (
                    p.get("type", type(p["default"])) not in numeric
                    or isinstance(p["default"], bool)
                    or not all(isinstance(p.get(k, 0), numeric) for k in ("default", "min", "max"))
                ):
                    raise StrategyLoadError(
                        f"{path}: hyperparameter {p['name']!r} is not a number (type {p.get('type')!r}, default "
                        f"{p['default']!r}); only int and float hyperparameters are supported."
                    )
                params.append(
                    {
                        "name": str(p["name"]),
                        "type": _param_type(p.get("type", type(p["default"]))),
                        "default": p["default"],
                        "min": p.get("min", -math.inf),
                        "max": p.get("max", math.inf),
                        "description": str(p.get("description", "")),
                    }
                )
            doc = inspect.getdoc(cls) or inspect.getdoc(sys.modules[cls.__module__]) or ""
            out[name] = {
                "class_name": cls.__name__,
                "summary": doc.strip().split("\n\n")[0].replace("\n", " ") if doc else "",
                "hyperparameters": params,
                "risk_managed": issubclass(cls, RiskManagedStrategy),
            }
        except StrategyLoadError as e:
            out[name] = {"error": str(e)}
        except Exception as e:
            out[name] = {"error": f"{path}: {type(e).__name__}: {e}"}
    return out
