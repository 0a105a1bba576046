"""The search space: a strategy's declared hyperparameters (type, range), narrowed by the caller, never widened.

Optuna's own distributions are the space; this module only checks the caller's narrowing against the declaration
and says what the valid ranges are when it refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from jesse_mcp.backtesting.catalog import Param, StrategySpec
from shared.errors import InvalidArgumentsError


@dataclass(frozen=True)
class Narrowing:
    """A caller's bounds for one hyperparameter; None keeps the declared bound (and a whole step for ints)."""

    min: float | None = None
    max: float | None = None
    step: float | None = None


def _declared(p: Param) -> str:
    lo = "unbounded" if not math.isfinite(p.min) else f"{p.min:g}"
    hi = "unbounded" if not math.isfinite(p.max) else f"{p.max:g}"
    return f"{p.name} ({p.type}, {lo} .. {hi})"


def valid_ranges(spec: StrategySpec) -> str:
    return ", ".join(_declared(p) for p in spec.params) or "(none declared)"


def _refuse(spec: StrategySpec, what: str) -> InvalidArgumentsError:
    return InvalidArgumentsError(
        f"{what} The search space can only narrow {spec.name}'s declared hyperparameters; valid ranges: "
        f"{valid_ranges(spec)}."
    )


def _bounds(spec: StrategySpec, p: Param, n: Narrowing) -> tuple[float, float]:
    lo = p.min if n.min is None else n.min
    hi = p.max if n.max is None else n.max
    for name, value in (("min", n.min), ("max", n.max)):
        if value is not None and not math.isfinite(value):
            raise _refuse(spec, f"space.{p.name}.{name} must be a finite number, got {value!r}.")
    if lo < p.min or hi > p.max:
        raise _refuse(
            spec, f"space.{p.name} = {lo:g} .. {hi:g} widens the declared range {p.min:g} .. {p.max:g} of {p.name}."
        )
    if lo > hi:
        raise _refuse(spec, f"space.{p.name}: min {lo:g} is above max {hi:g}.")
    if p.type == "int" and (lo != int(lo) or hi != int(hi)):
        raise _refuse(spec, f"space.{p.name} is an int hyperparameter; give whole-number bounds, not {lo:g} .. {hi:g}.")
    return lo, hi


def _step(spec: StrategySpec, p: Param, lo: float, hi: float, step: float | None) -> float | None:
    if step is None:
        return 1 if p.type == "int" else None
    if not math.isfinite(step) or step <= 0:
        raise _refuse(spec, f"space.{p.name}.step must be a positive number, got {step!r}.")
    if p.type == "int" and step != int(step):
        raise _refuse(spec, f"space.{p.name}.step must be a whole number for an int hyperparameter, got {step:g}.")
    if hi > lo:
        steps = (hi - lo) / step
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
            fit = lo + math.floor(steps) * step
            raise _refuse(
                spec,
                f"space.{p.name}.step {step:g} does not divide the range {lo:g} .. {hi:g} into whole steps; use a "
                f"max of {fit:g}, or another step.",
            )
    return step


def build_space(spec: StrategySpec, narrowing: dict[str, Narrowing] | None) -> dict[str, BaseDistribution]:
    """Optuna distributions for every searchable hyperparameter, in declaration order. A hyperparameter with an
    unbounded declared range is searched only when the caller bounds it; min == max fixes a value."""
    narrowing = dict(narrowing or {})
    known = {p.name for p in spec.params}
    unknown = sorted(set(narrowing) - known)
    if unknown:
        raise _refuse(spec, f"Unknown hyperparameter(s) in space: {', '.join(unknown)}.")
    space: dict[str, BaseDistribution] = {}
    for p in spec.params:
        n = narrowing.get(p.name, Narrowing())
        lo, hi = _bounds(spec, p, n)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            continue  # nothing to search between unbounded ends: the configured value stays
        step = _step(spec, p, lo, hi, n.step)
        if p.type == "int":
            space[p.name] = IntDistribution(int(lo), int(hi), step=int(step or 1))
        else:
            space[p.name] = FloatDistribution(lo, hi, step=step)
    if not space:
        raise _refuse(spec, f"{spec.name} has no hyperparameter with a bounded range to search.")
    return space


def describe(space: dict[str, BaseDistribution]) -> dict[str, dict[str, Any]]:
    """The space as plain numbers, for the answer and the stored request."""
    out: dict[str, dict[str, Any]] = {}
    for name, d in space.items():
        if isinstance(d, IntDistribution | FloatDistribution):
            kind = "int" if isinstance(d, IntDistribution) else "float"
            out[name] = {"min": d.low, "max": d.high, "step": d.step, "type": kind}
    return out
