"""The prompts of jesse_mcp (the usual workflows, step by step) and the completion of their arguments.

Prompt texts write every tool as a call, `tool(argument=...)`; tests/test_prompts.py checks each call against the
server's tools and their parameters, so a renamed tool or argument fails the tests instead of misleading the model.
Completion reads names without importing Jesse: built-in strategies from the catalog, user strategy files by name,
the configured strategies, and the markets in the candle store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from jesse_mcp.backtesting.catalog import BUILTIN, find_user_strategy_files
from jesse_mcp.backtesting.service import BacktestService
from shared.config.models import STAGES, TradingConfig
from shared.config.profiles import PROFILE_NAMES, ProfileName
from shared.errors import ConfigError
from shared.market.candles import CandleStore
from shared.server.completion import Completions, one_of
from shared.server.registry import GuardedServer

PROMOTION_TARGETS = tuple(s for s in STAGES if s != STAGES[0])  # a promotion goes to paper or live

Strategy = Annotated[
    str,
    Field(
        description="Strategy name (list_strategies), e.g. trend_following.", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
    ),
]
Profile = Annotated[ProfileName, Field(description="Risk profile: conservative, moderate or aggressive.")]
Market = Annotated[
    str,
    Field(description="Stored market symbol, e.g. BTC-USDT; empty to choose one from list_candles.", max_length=32),
]


def strategy_names(home: Path, config_load: Callable[[], TradingConfig]) -> list[str]:
    """Built-in strategies, user strategy files and the strategies named in the configuration."""
    names = set(BUILTIN) | set(find_user_strategy_files(home))
    with contextlib.suppress(ConfigError, OSError):  # a broken configuration is reported by every tool call
        names |= set(config_load().strategies)
    return sorted(names)


def market_symbols(candles: CandleStore) -> list[str]:
    """The symbols of the markets stored for backtests (any exchange)."""
    try:
        return sorted({m.symbol for m in candles.markets()})
    except (OSError, ValueError):  # an unreadable market file: list_candles reports it
        return []


def _with(**arguments: str) -> str:
    """Keyword arguments for a call in a prompt text; empty values are left out."""
    return "".join(f", {k}={v!r}" for k, v in arguments.items() if v)


def backtest_workflow(
    strategy: Strategy = "trend_following", risk_profile: Profile = "conservative", symbol: Market = ""
) -> str:
    """Steps to backtest a strategy and judge the result honestly."""
    market = _with(symbol=symbol.strip())
    return (
        f"Backtest the strategy '{strategy}' under the '{risk_profile}' risk profile, and judge it honestly.\n"
        f"1. Call list_strategies() to confirm the strategy and its hyperparameters, and get_policy(strategy="
        f"'{strategy}') for the effective risk limits.\n"
        "2. Call list_candles(). If no suitable market is stored, call import_candles(symbol=..., days=...) (real "
        "exchange data) or, offline, generate_synthetic_candles(symbol=..., days=...); say clearly when results rest "
        "on synthetic data.\n"
        f"3. Call backtest(strategy='{strategy}', risk_profile='{risk_profile}'{market}, ...). Report net profit %, "
        "max drawdown %, Sharpe, trades and the risk_adherence block, including any violations and notes.\n"
        f"4. Call compare_risk_profiles(strategy='{strategy}'{market}) to show how sizing changes the outcome.\n"
        "5. With the backtest id: stress_test(backtest_id=...) (does drawdown breach max_drawdown or "
        "emergency_stop?), monte_carlo(backtest_id=...) (the spread of returns and drawdowns), and "
        "validate_strategy(backtest_id=...) (walk-forward out-of-sample results and the deflated Sharpe ratio).\n"
        "6. Conclude with what the evidence supports. A good in-sample backtest alone is not evidence of an edge; "
        "never promote a strategy's stage on one backtest."
    )


def risk_profile_comparison(strategy: Strategy, symbol: Market = "") -> str:
    """Run one strategy under the three risk profiles and recommend the one the evidence supports."""
    market = _with(symbol=symbol.strip())
    return (
        f"Compare the three risk profiles for the strategy '{strategy}'.\n"
        f"1. Call get_policy(strategy='{strategy}') for the profile it is configured with, and list_candles() to "
        "choose the market and range (prefer recorded data to synthetic, and say which was used).\n"
        f"2. Call compare_risk_profiles(strategy='{strategy}'{market}): the same backtest under conservative, "
        "moderate and aggressive sizing.\n"
        "3. Present the side-by-side table: net profit %, max drawdown % against each profile's max_drawdown, "
        "Sharpe, position sizes and any limit breaches. Say where more risk bought more return and where it only "
        "bought more drawdown.\n"
        "4. Recommend the profile the evidence supports, with the main caveats (one market, one period, synthetic "
        "data if so).\n"
        "5. Do not change the configuration on your own. If the person asks to change the strategy's profile, call "
        f'update_config(changes={{"strategies.{strategy}.risk_profile": "<profile>"}}, reason=...) with their '
        "reason; a looser profile asks them to confirm."
    )


def promotion_review(
    strategy: Strategy,
    to_stage: Annotated[Literal["paper", "live"], Field(description="The stage asked for: paper or live.")] = "paper",
) -> str:
    """Weigh the evidence for promoting a strategy one stage, and promote only with the person's say-so."""
    call = f"strategy='{strategy}', to_stage='{to_stage}'"
    if to_stage == "live":
        evidence = (
            f"3. Call get_paper_performance(strategy='{strategy}') for the paper track record the gates read: days "
            "traded, closed trades, Sharpe, max drawdown, win rate and the recent trades.\n"
        )
    else:
        evidence = (
            f"3. Call list_backtests(strategy='{strategy}') and, for the ids in the report's evidence, "
            "get_backtest(id=...): which backtest and stress test the gates were measured on, and on what data.\n"
        )
    return (
        f"Review whether the strategy '{strategy}' may be promoted to the '{to_stage}' stage. The decision is the "
        "person's; your part is to present the evidence exactly as the tools report it.\n"
        f"1. Call get_stage(strategy='{strategy}') for its own and effective stage; a promotion goes one stage up "
        "(exploration -> paper -> live).\n"
        f"2. Call get_promotion_gates({call}). List every gate with its measured value, its threshold and "
        "whether it passed, as reported.\n"
        f"{evidence}"
        f"4. Call get_stage_history(strategy='{strategy}') for earlier promotions and demotions and their reasons.\n"
        "5. Summarise which gates pass, which fail, and what evidence would close each gap. Never describe a failed "
        "or unmeasured gate as passed, never round a value across its threshold, and never try to get around a gate "
        "(for example by changing limits or gates in the configuration).\n"
        "6. Ask the person whether to promote. Only if every gate passes and the person says yes in this "
        f"conversation, call request_stage_promotion({call}, reason=...) with their reason, and report the "
        "gates it returns. Without a clear yes, do not call it."
    )


def stress_review(
    strategy: Strategy,
    backtest_id: Annotated[
        str, Field(description="A stored backtest id (bt_...); empty for the newest of the strategy.", max_length=40)
    ] = "",
) -> str:
    """Stress a strategy's backtest with shocks and resampling, and say what it would survive."""
    if backtest_id.strip():
        bid = repr(backtest_id.strip())
        pick = f"2. Call get_backtest(id={bid}) and confirm it is a backtest of '{strategy}'.\n"
    else:
        pick = (
            f"2. Call list_backtests(strategy='{strategy}', kind='backtest') and take the newest backtest on recorded "
            f"data (say so if only synthetic data exists); if there is none, run backtest(strategy='{strategy}') "
            "first.\n"
        )
        bid = "..."
    return (
        f"Review how the strategy '{strategy}' holds up under stress.\n"
        f"1. Call get_policy(strategy='{strategy}') for the profile's max_drawdown and emergency_stop.\n"
        f"{pick}"
        f"3. Call stress_test(backtest_id={bid}). For each scenario (flash crash, volatility x3, gap down, a "
        "2020-style crash) report return, drawdown and the worst trade, and whether drawdown went past "
        "max_drawdown or reached the emergency stop.\n"
        f"4. Call monte_carlo(backtest_id={bid}): the 5th to 95th percentiles of return and drawdown, the "
        "probability of a loss and of drawdown beyond max_drawdown.\n"
        "5. Conclude what the strategy would and would not survive under its profile. A scenario that reaches the "
        "emergency stop blocks promotion to paper; say so plainly, and do not soften it."
    )


def optimization_workflow(strategy: Strategy, symbol: Market = "") -> str:
    """Tune a strategy's hyperparameters and judge the winner out of sample, without fooling anyone."""
    symbols = f", symbols=[{symbol.strip()!r}]" if symbol.strip() else ""
    return (
        f"Optimize the hyperparameters of the strategy '{strategy}' and judge honestly whether the result holds.\n"
        f"1. Call list_strategies() for its declared hyperparameters and ranges, and get_policy(strategy="
        f"'{strategy}') for the risk profile the trials are sized and judged by (a trial past its max_drawdown is "
        "infeasible).\n"
        "2. Call list_candles(); the range must hold enough data for the warm-up of the largest periods searched and "
        "an unseen test period. Say when it is synthetic.\n"
        f"3. Call optimize_strategy(strategy='{strategy}'{symbols}, trials=..., seed=...). Keep the trial count "
        "modest (30-100): every extra trial makes a lucky winner likelier. For a long run pass wait=false and follow "
        "it with get_optimization(id=...); cancel_optimization(id=...) stops it.\n"
        "4. Report in this order: the out-of-sample figures (net profit %, Sharpe, max drawdown %, trades), then "
        "in-sample, then the deflated Sharpe ratio over every trial run and the probabilistic Sharpe ratio, the "
        "trial counts (feasible, infeasible, failed) and the verdict. Quote the verdict as the tool gives it; a high "
        "in-sample Sharpe with a deflated Sharpe below 0.95 is not evidence of an edge.\n"
        "5. If the person wants more assurance, run it again with validation='walk_forward' or on another market "
        "(symbols=[...]), and show the parameter importances: which settings matter.\n"
        "6. The optimizer only proposes. Adopt the values only if the person asks: call update_config with the "
        "report's adopt.changes and their reason. Then run a fresh backtest with the configured values (and a "
        "stress test) for evidence: the optimizer's trials never count towards promotion."
    )


PROMPTS = {
    "backtest_workflow": ("Backtest a strategy, properly", backtest_workflow),
    "risk_profile_comparison": ("Compare risk profiles", risk_profile_comparison),
    "promotion_review": ("Review a stage promotion", promotion_review),
    "stress_review": ("Stress-test a strategy", stress_review),
    "optimization_workflow": ("Optimize a strategy, out of sample", optimization_workflow),
}


def add_prompts(server: GuardedServer, service: BacktestService) -> None:
    """Register the prompts and the completion of strategy, profile, stage and market names."""
    for name, (title, fn) in PROMPTS.items():
        server.prompt(name=name, title=title)(fn)
    strategies = one_of(lambda: strategy_names(service.home, service.config_load))
    symbols = one_of(lambda: market_symbols(service.candles))
    profiles, stages = one_of(PROFILE_NAMES), one_of(PROMOTION_TARGETS)
    completions = Completions()
    completions.prompt("backtest_workflow", strategy=strategies, risk_profile=profiles, symbol=symbols)
    completions.prompt("risk_profile_comparison", strategy=strategies, symbol=symbols)
    completions.prompt("promotion_review", strategy=strategies, to_stage=stages)
    completions.prompt("stress_review", strategy=strategies)
    completions.prompt("optimization_workflow", strategy=strategies, symbol=symbols)
    completions.template("strategies://{name}", name=strategies)
    completions.install(server)
