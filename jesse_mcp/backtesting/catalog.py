"""What strategies exist and what their hyperparameters mean, without importing Jesse.

The built-in strategies' Jesse classes (jesse_mcp/backtesting/strategies/) read their hyperparameters from here, so
listing and validating them in the server never waits for Jesse's import. User strategies are Jesse Strategy files in
$TRADING_MCP_HOME/strategies/ (`<name>.py` or `<name>/__init__.py`); their parameters are read in a worker.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shared.errors import InvalidArgumentsError

ParamType = Literal["int", "float"]
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "45m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1D")
TIMEFRAME_MINUTES = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "45m": 45,
    "1h": 60,
    "2h": 120,
    "3h": 180,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1D": 1440,
}
MIN_WARMUP = 60
MAX_WARMUP = 2000  # Jesse keeps 5000 candles per series in memory; stay well inside it


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    default: float
    min: float
    max: float
    description: str

    def check(self, value: Any) -> float:
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise InvalidArgumentsError(f"Hyperparameter {self.name} must be a whole number, got {value!r}.")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgumentsError(f"Hyperparameter {self.name} must be a number, got {value!r}.")
        if not self.min <= value <= self.max:
            raise InvalidArgumentsError(
                f"Hyperparameter {self.name} must be between {self.min:g} and {self.max:g}, got {value!r}."
            )
        return int(value) if self.type == "int" else float(value)

    def jesse(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": int if self.type == "int" else float,
            "min": self.min,
            "max": self.max,
            "default": self.default,
        }


@dataclass(frozen=True)
class StrategySpec:
    name: str
    summary: str
    params: tuple[Param, ...]
    builtin: bool
    module: str | None = None  # built-in: the module holding the Jesse class
    class_name: str | None = None
    path: str | None = None  # user strategy: its file
    risk_managed: bool = True
    warmup_rule: str = "4 x the longest indicator period, at least 60 candles"
    validation_grid: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise InvalidArgumentsError(
            f"Strategy {self.name} has no hyperparameter {name!r}; its hyperparameters: {known}."
        )

    def resolve_hyperparameters(self, overrides: dict[str, Any] | None) -> dict[str, float]:
        """Defaults with the overrides applied, each checked against its type and range."""
        values: dict[str, float] = {p.name: p.default for p in self.params}
        for name, value in (overrides or {}).items():
            values[name] = self.param(name).check(value)
        check = BUILTIN_CHECKS.get(self.name)
        if check is not None:
            check(values)
        return values

    def warmup_candles(self, hp: dict[str, float]) -> int:
        """Candles of the route's timeframe Jesse keeps for indicators: enough for them to converge, and never 0
        (0 makes Jesse recompute every indicator over the whole history: quadratic time)."""
        periods = [int(v) for k, v in hp.items() if k.endswith("_period")]
        if not periods and not self.builtin:
            return 210  # Jesse's own default for strategies it knows nothing about
        return max(MIN_WARMUP, min(MAX_WARMUP, 4 * max(periods, default=15)))


def _p(name: str, type_: ParamType, default: float, lo: float, hi: float, description: str) -> Param:
    return Param(name, type_, default, lo, hi, description)


ALLOW_SHORT = _p("allow_short", "int", 1, 0, 1, "1 = also trade short (futures), 0 = long only.")


def _fast_below_slow(hp: dict[str, float], fast: str, slow: str) -> None:
    if hp[fast] >= hp[slow]:
        raise InvalidArgumentsError(f"{fast} ({hp[fast]:g}) must be smaller than {slow} ({hp[slow]:g}).")


BUILTIN: dict[str, StrategySpec] = {
    "trend_following": StrategySpec(
        name="trend_following",
        summary="EMA crossover with an ADX trend-strength filter: long while the fast EMA is above the slow one and "
        "ADX shows a trend, short in the mirror case; exits when the EMAs cross back.",
        params=(
            _p("fast_period", "int", 20, 3, 200, "Fast EMA length, in candles."),
            _p("slow_period", "int", 50, 5, 400, "Slow EMA length, in candles; larger than fast_period."),
            _p("adx_period", "int", 14, 5, 50, "ADX length, in candles."),
            _p("adx_min", "float", 20.0, 0.0, 60.0, "Smallest ADX that counts as a trend (0 disables the filter)."),
            ALLOW_SHORT,
        ),
        builtin=True,
        module="jesse_mcp.backtesting.strategies.trend_following",
        class_name="TrendFollowing",
        validation_grid={"fast_period": (10, 20, 30), "slow_period": (50, 100)},
    ),
    "mean_reversion": StrategySpec(
        name="mean_reversion",
        summary="Bollinger Bands with an RSI confirmation: buys a close below the lower band while RSI is oversold, "
        "sells short above the upper band while RSI is overbought; exits at the middle band.",
        params=(
            _p("bb_period", "int", 20, 5, 200, "Bollinger Bands length, in candles."),
            _p("bb_std", "float", 2.0, 0.5, 4.0, "Band width, in standard deviations."),
            _p("rsi_period", "int", 14, 2, 100, "RSI length, in candles."),
            _p("rsi_low", "float", 30.0, 1.0, 50.0, "RSI at or below which the market counts as oversold."),
            _p("rsi_high", "float", 70.0, 50.0, 99.0, "RSI at or above which the market counts as overbought."),
            ALLOW_SHORT,
        ),
        builtin=True,
        module="jesse_mcp.backtesting.strategies.mean_reversion",
        class_name="MeanReversion",
        validation_grid={"bb_period": (20, 40), "bb_std": (1.5, 2.0, 2.5)},
    ),
    "breakout": StrategySpec(
        name="breakout",
        summary="Donchian channel breakout: enters when the close breaks the highest high (or lowest low) of the "
        "previous channel_period candles on above-average volume; exits on the opposite exit_period channel.",
        params=(
            _p("channel_period", "int", 20, 5, 200, "Entry channel length, in candles."),
            _p("exit_period", "int", 10, 2, 200, "Exit channel length, in candles; at most channel_period."),
            _p(
                "volume_factor",
                "float",
                1.0,
                0.0,
                5.0,
                "The breakout candle's volume must be at least this multiple of the channel's mean (0 = no filter).",
            ),
            ALLOW_SHORT,
        ),
        builtin=True,
        module="jesse_mcp.backtesting.strategies.breakout",
        class_name="Breakout",
        validation_grid={"channel_period": (20, 40, 60), "exit_period": (10, 20)},
    ),
    "momentum": StrategySpec(
        name="momentum",
        summary="Rate-of-change momentum confirmed by the MACD histogram and a trend EMA: long when price rose more "
        "than roc_threshold % over roc_period candles with a positive histogram above the EMA; exits when the "
        "histogram changes sign.",
        params=(
            _p("roc_period", "int", 12, 2, 200, "Rate-of-change length, in candles."),
            _p("roc_threshold", "float", 1.0, 0.0, 50.0, "Smallest rate of change for an entry, in percent."),
            _p("macd_fast_period", "int", 12, 2, 100, "MACD fast EMA length."),
            _p("macd_slow_period", "int", 26, 3, 200, "MACD slow EMA length; larger than macd_fast_period."),
            _p("macd_signal_period", "int", 9, 2, 100, "MACD signal line length."),
            _p("trend_period", "int", 100, 5, 400, "Trend EMA length: longs only above it, shorts only below."),
            ALLOW_SHORT,
        ),
        builtin=True,
        module="jesse_mcp.backtesting.strategies.momentum",
        class_name="Momentum",
        validation_grid={"roc_period": (6, 12, 24), "roc_threshold": (0.5, 1.5)},
    ),
}


def _check_breakout(hp: dict[str, float]) -> None:
    if hp["exit_period"] > hp["channel_period"]:
        raise InvalidArgumentsError(
            f"exit_period ({hp['exit_period']:g}) must be at most channel_period ({hp['channel_period']:g})."
        )


def _check_mean_reversion(hp: dict[str, float]) -> None:
    if hp["rsi_low"] >= hp["rsi_high"]:
        raise InvalidArgumentsError(f"rsi_low ({hp['rsi_low']:g}) must be smaller than rsi_high ({hp['rsi_high']:g}).")


BUILTIN_CHECKS = {
    "trend_following": lambda hp: _fast_below_slow(hp, "fast_period", "slow_period"),
    "momentum": lambda hp: _fast_below_slow(hp, "macd_fast_period", "macd_slow_period"),
    "mean_reversion": _check_mean_reversion,
    "breakout": _check_breakout,
}


def fingerprint(spec: StrategySpec) -> str:
    """sha256 of the code a run executes: the user's file, or the built-in module and its base class."""
    import hashlib

    here = Path(__file__).parent / "strategies"
    files = [Path(spec.path)] if spec.path else [here / f"{spec.name}.py", here / "base.py"]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def user_strategy_dir(home: Path) -> Path:
    return home / "strategies"


def find_user_strategy_files(home: Path) -> dict[str, Path]:
    """name -> file for every `<name>.py` and `<name>/__init__.py` in the user's strategies folder."""
    folder = user_strategy_dir(home)
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    inside = folder.resolve()
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")) or not entry.resolve().is_relative_to(inside):
            continue  # hidden, private, or a link out of the strategies folder
        if entry.is_file() and entry.suffix == ".py" and NAME_RE.match(entry.stem):
            found[entry.stem] = entry
        elif entry.is_dir() and (entry / "__init__.py").is_file() and NAME_RE.match(entry.name):
            found.setdefault(entry.name, entry / "__init__.py")
    return found


def user_spec_from_description(name: str, path: Path, info: dict[str, Any]) -> StrategySpec:
    """A StrategySpec from what a worker read out of a user's strategy file (see strategy_loader.describe)."""
    params = tuple(
        Param(
            name=str(p["name"]),
            type="int" if p.get("type") == "int" else "float",
            default=p["default"],
            min=p.get("min", -math.inf),
            max=p.get("max", math.inf),
            description=str(p.get("description", "")),
        )
        for p in info.get("hyperparameters", [])
    )
    return StrategySpec(
        name=name,
        summary=info.get("summary") or f"User strategy {info.get('class_name')} from {path}.",
        params=params,
        builtin=False,
        class_name=info.get("class_name"),
        path=str(path),
        risk_managed=bool(info.get("risk_managed")),
        warmup_rule="4 x the longest *_period hyperparameter, at least 60 candles (210 if it has none); "
        "the backtest tool's warmup_candles argument overrides it",
    )
