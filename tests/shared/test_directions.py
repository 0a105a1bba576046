"""Every configuration field declares which way is riskier; a change that way needs the person, the other way never."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from shared.config.changes import apply_changes, loosenings
from shared.config.directions import COMPARE_KEY, ORDER_KEY, RISKIER_KEY, declared
from shared.config.file import validate_config_data
from shared.config.models import TradingConfig
from shared.errors import ConfigError

# Sample entries of the named collections, so that the walk reaches the fields inside them.
ENTRY = {"news_priorities": "coindesk", "strategies": "trend_following", "providers": "binance"}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = get_args(annotation)  # dict[str, Model]: the values are the model
    return _model_of(args[-1]) if args else None


def leaf_fields(model: type[BaseModel] = TradingConfig, path: str = "") -> Iterator[tuple[str, Any]]:
    for name, info in model.model_fields.items():
        sub = f"{path}.{name}" if path else name
        inner = _model_of(info.annotation)
        if inner is not None and declared(info) is None:
            entry = ENTRY.get(name)
            yield from leaf_fields(inner, f"{sub}.{entry}" if entry else sub)
        else:
            yield sub, info


LEAVES = list(leaf_fields())


def test_every_leaf_field_of_the_configuration_declares_its_riskier_direction():
    missing = [path for path, info in LEAVES if declared(info) is None]
    assert missing == []
    assert len(LEAVES) > 90  # the walk really went into every section and collection


def _candidates(decl: dict[str, Any], value: Any) -> tuple[list[Any], list[Any]]:
    """(riskier values, safer values) to try for a field, most plausible first."""
    riskier = decl[RISKIER_KEY]
    if ORDER_KEY in decl:
        order = decl[ORDER_KEY]
        i = order.index(value)
        up, down = order[i + 1 :], order[:i][::-1]
        return (up, down) if riskier == "higher" else (down, up)
    if isinstance(value, bool):
        return [riskier == "on"], [riskier != "on"]
    if isinstance(value, int | float):
        bigger = [value * 2, value + 1, value * 1.1, value + 0.01] if value else [1, 0.5, 0.01]
        smaller = [value / 2, value - 1, value * 0.9, value - 0.01] if value else [-1, -0.01]
        if isinstance(value, int):
            bigger, smaller = [int(v) for v in bigger if int(v) != value], [int(v) for v in smaller if int(v) != value]
        return (bigger, smaller) if riskier == "higher" else (smaller, bigger)
    return [], []


def _valid_change(path: str, values: list[Any], base: TradingConfig) -> tuple[Any, TradingConfig] | None:
    data = base.model_dump(mode="json")
    for value in values:
        try:
            return value, validate_config_data(apply_changes(data, {path: value}))
        except ConfigError:
            continue
    return None


WALKED = [
    (path, declared(info))
    for path, info in LEAVES
    if declared(info)[COMPARE_KEY] == "walk" and declared(info)[RISKIER_KEY] in ("higher", "lower", "on", "off")
]


@pytest.mark.parametrize(("path", "decl"), WALKED, ids=[p for p, _ in WALKED])
def test_a_change_in_the_riskier_direction_needs_the_person_and_the_other_way_never(path, decl):
    base = TradingConfig()
    riskier, safer = _candidates(decl, getattr_path(base, path))
    tighter = _valid_change(path, safer, base)
    if isinstance(getattr_path(base, path), bool):  # a switch: go riskier from its safe position
        assert tighter is not None
        base = tighter[1]
    looser = _valid_change(path, riskier, base)
    assert looser is not None or tighter is not None, f"no valid value found to move {path}"
    if looser is not None:
        value, cfg = looser
        assert any(path in s for s in loosenings(base, cfg)), (path, value)
    if tighter is not None:
        value, cfg = tighter
        assert loosenings(TradingConfig(), cfg) == [], (path, value)


def getattr_path(cfg: TradingConfig, path: str) -> Any:
    node: Any = cfg
    for part in path.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"paper.starting_balance": 1e9}, "paper.starting_balance 10000 -> 1e+09"),
        ({"price_config.quote_ttl_s": 60}, "price_config.quote_ttl_s 5 -> 60"),
        ({"price_config.candle_ttl_s": 10**6}, "price_config.candle_ttl_s 86400 -> 1e+06"),
        ({"discovery.price_confirmation": False}, "discovery.price_confirmation true -> false"),
        ({"news_priorities.twitter.weight": 0.9}, "news_priorities.twitter.weight 0.1 -> 0.9"),
        ({"news_priorities.telegram.priority": 1}, "news_priorities.telegram.priority 7 -> 1"),
        ({"zai_glm_config.api_endpoint": "https://glm.example/v4"}, "zai_glm_config.api_endpoint"),
        ({"news_priorities.newsite": {"priority": 2, "weight": 0.3}}, "news_priorities.newsite added"),
    ],
)
def test_the_loosenings_the_audit_found_need_the_person(changes, expected):
    found = loosenings(TradingConfig(), validate_config_data(apply_changes(TradingConfig().model_dump(), changes)))
    assert any(s.startswith(expected) for s in found), found


def test_removing_a_news_source_or_lowering_its_weight_needs_nobody():
    data = TradingConfig().model_dump(mode="json")
    cfg = validate_config_data(
        apply_changes(data, {"news_priorities.reddit": None, "news_priorities.twitter.weight": 0})
    )
    assert loosenings(TradingConfig(), cfg) == []
