"""Which way each configuration field takes more risk.

Every leaf field of the configuration declares a direction (a test walks the whole model and fails on a field
without one); `shared.config.changes.loosenings` asks the person for every change in the riskier direction and never
for a change the other way. The declaration lives in the field's JSON schema (`x-riskier`), so the configuration
reference shows it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

Riskier = Literal["higher", "lower", "on", "off", "change", "added", "neutral"]
# higher/lower: a larger/smaller value is riskier (with `order`, for names ranked from safest to riskiest);
# on/off: switching it on/off is riskier; change: any change needs the person (addresses, listeners, connectors);
# added: adding an item to the list is riskier, removing one is not; neutral: no effect on risk (the reason is
# given in `why`).
# compare: "walk" (the generic comparison of old and new values), "resolved" (compared after resolving profiles and
# overrides, shared.config.resolve), "stage" (stage raises go through promotion, never through a configuration change).
Compare = Literal["walk", "resolved", "stage"]
RISKIER_KEY = "x-riskier"
ORDER_KEY = "x-riskier-order"
COMPARE_KEY = "x-compare"


def direction(
    riskier: Riskier, *, order: Sequence[str] | None = None, compare: Compare = "walk", why: str | None = None
) -> dict[str, Any]:
    """The `json_schema_extra` that declares a field's risk direction."""
    if riskier == "neutral" and not why:
        raise ValueError("a neutral field says why it does not change risk")
    extra: dict[str, Any] = {RISKIER_KEY: riskier, COMPARE_KEY: compare}
    if order is not None:
        extra[ORDER_KEY] = list(order)
    if why:
        extra["x-riskier-why"] = why
    return extra


def knob(
    default: Any,
    riskier: Riskier,
    description: str | None = None,
    *,
    order: Sequence[str] | None = None,
    compare: Compare = "walk",
    why: str | None = None,
    **constraints: Any,
) -> Any:
    """A pydantic Field that declares its risk direction."""
    extra = direction(riskier, order=order, compare=compare, why=why)
    if "default_factory" in constraints:
        return Field(description=description, json_schema_extra=extra, **constraints)
    return Field(default, description=description, json_schema_extra=extra, **constraints)


def declared(field_info: Any) -> dict[str, Any] | None:
    extra = getattr(field_info, "json_schema_extra", None)
    return extra if isinstance(extra, dict) and RISKIER_KEY in extra else None


def is_riskier(decl: dict[str, Any], old: Any, new: Any) -> bool:
    """True when `new` takes more risk than `old` under the declaration `decl`."""
    if old == new:
        return False
    riskier = decl[RISKIER_KEY]
    if riskier == "neutral":
        return False
    if riskier == "change":
        return True
    if riskier in ("on", "off"):
        return bool(new) is (riskier == "on") and bool(old) is not (riskier == "on")
    if riskier == "added":
        before = set(old or ())
        return any(item not in before for item in new or ())
    order = decl.get(ORDER_KEY)
    if order is not None:
        old, new = order.index(old), order.index(new)
    if old is None or new is None:  # set or unset where a value was expected: the person decides
        return True
    return new > old if riskier == "higher" else new < old
