"""Each protection triggers at its threshold and not before, and its lock lasts exactly its pause."""

from __future__ import annotations

import pytest

from shared.policy.protections import (
    HOUR_MS,
    MINUTE_MS,
    Exit,
    Protections,
    WindowPeak,
    blocking,
    drawdown_lock,
    locks_on_exit,
    replay,
)

P = Protections(
    cooldown_minutes=30,
    stoploss_guard_stops=3,
    low_profit_max_loss=0.05,
    window_drawdown=0.10,
    protection_window_hours=24,
    protection_pause_hours=6,
)
T0 = 1_800_000_000_000


def stop(symbol: str, hours: float, ret: float = -0.01) -> Exit:
    return Exit(symbol, T0 + int(hours * HOUR_MS), ret, True)


def test_cooldown_locks_only_that_market_for_exactly_its_minutes():
    e = Exit("BTC", T0, 0.02, False)
    [lock] = locks_on_exit(e, [], P)
    assert (lock.rule, lock.symbol, lock.until_ms) == ("cooldown", "BTC", T0 + 30 * MINUTE_MS)
    assert blocking([lock], "BTC", T0 + 30 * MINUTE_MS - 1) == [lock]
    assert blocking([lock], "BTC", T0 + 30 * MINUTE_MS) == [] and blocking([lock], "ETH", T0) == []
    assert locks_on_exit(e, [], Protections(**{**P.__dict__, "cooldown_minutes": 0})) == []


def test_the_stoploss_guard_pauses_everything_at_the_nth_stop_in_the_window_and_not_before():
    quiet = Protections(**{**P.__dict__, "cooldown_minutes": 0, "low_profit_max_loss": 10})
    two = [stop("BTC", 0), stop("ETH", 5)]
    assert replay(two, [], quiet) == []  # two stops: below the limit of three
    third = stop("SOL", 23.9)
    [lock] = locks_on_exit(third, two, quiet)
    assert (lock.rule, lock.symbol, lock.from_ms) == ("stoploss_guard", None, third.closed_ms)
    assert lock.until_ms == third.closed_ms + 6 * HOUR_MS and "3 stop losses within 24 h" in lock.reason
    late = stop("SOL", 24.1)  # the first stop has left the window: only two count
    assert locks_on_exit(late, two, quiet) == []
    assert locks_on_exit(Exit("SOL", third.closed_ms, 0.01, False), two, quiet) == []  # not a stop: no guard


def test_the_low_profit_lock_takes_a_market_whose_window_lost_more_than_the_limit():
    quiet = Protections(**{**P.__dict__, "cooldown_minutes": 0, "stoploss_guard_stops": 100})
    earlier = [Exit("BTC", T0, -0.03, False), Exit("ETH", T0 + HOUR_MS, -0.2, False)]
    assert locks_on_exit(Exit("BTC", T0 + 2 * HOUR_MS, -0.02, False), earlier, quiet) == []  # exactly 5 %: not more
    [lock] = locks_on_exit(Exit("BTC", T0 + 2 * HOUR_MS, -0.021, False), earlier, quiet)
    assert (lock.rule, lock.symbol) == ("low_profit_lock", "BTC") and "lost 5.10 %" in lock.reason


def test_the_drawdown_pause_measures_from_the_high_of_the_window():
    assert drawdown_lock(T0, 9_001, 10_000, P) is None
    lock = drawdown_lock(T0, 9_000, 10_000, P)
    assert lock is not None and lock.until_ms == T0 + 6 * HOUR_MS and "10.00 % below its high" in lock.reason
    # a high that has left the window no longer counts
    points = [(T0, 10_000.0), (T0 + 25 * HOUR_MS, 9_200.0), (T0 + 26 * HOUR_MS, 9_000.0)]
    assert [k.rule for k in replay([], points, P)] == []
    points[1] = (T0 + 23 * HOUR_MS, 9_500.0)
    assert replay([], points, P) == []  # 10,000 left the window at 24 h: 9,000 is 5.3 % below 9,500


@pytest.mark.parametrize("window", [1, 5, 50])
def test_the_window_peak_is_the_highest_value_of_the_window(window):
    values = [(i * MINUTE_MS, float((i * 37) % 11)) for i in range(200)]
    peaks = WindowPeak(window * MINUTE_MS)
    for i, (t, v) in enumerate(values):
        assert peaks.add(t, v) == max(x for s, x in values[: i + 1] if s > t - window * MINUTE_MS)


def test_the_running_window_makes_the_locks_of_the_definition_on_a_long_random_history():
    import random

    rng = random.Random(4)
    t, exits = T0, []
    for _ in range(600):
        t += rng.choice([0, MINUTE_MS, 20 * MINUTE_MS, 3 * HOUR_MS, 30 * HOUR_MS])
        exits.append(Exit(rng.choice("ABC"), t, rng.uniform(-0.04, 0.02), rng.random() < 0.4))
    expected = []  # the definition: each exit against every earlier one still within the window, summed afresh
    for i, e in enumerate(exits):
        recent = [x for x in exits[:i] if e.closed_ms - P.window_ms < x.closed_ms] + [e]
        stops = sum(x.stop_loss for x in recent)
        loss = -sum(x.trade_return for x in recent if x.symbol == e.symbol)
        rules = ["cooldown"]
        rules += ["stoploss_guard"] if e.stop_loss and stops >= P.stoploss_guard_stops else []
        rules += ["low_profit_lock"] if loss > P.low_profit_max_loss + 1e-9 else []
        expected += [(rule, e.closed_ms) for rule in rules]
    got = [(k.rule, k.from_ms) for k in replay(exits, [], P)]
    assert got == expected and {r for r, _ in got} == {"cooldown", "stoploss_guard", "low_profit_lock"}
