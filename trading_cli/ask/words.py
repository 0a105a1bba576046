"""The words `trading-mcp ask` knows: profile adverbs and synonyms, timeframes, stages, built-in strategies, units
of time, and the filler words a command may contain."""

from __future__ import annotations

PROFILE_WORDS: dict[str, str] = {
    "conservative": "conservative",
    "conservatively": "conservative",
    "safe": "conservative",
    "safely": "conservative",
    "cautious": "conservative",
    "cautiously": "conservative",
    "careful": "conservative",
    "carefully": "conservative",
    "defensive": "conservative",
    "defensively": "conservative",
    "moderate": "moderate",
    "moderately": "moderate",
    "balanced": "moderate",
    "normal": "moderate",
    "normally": "moderate",
    "medium": "moderate",
    "aggressive": "aggressive",
    "aggressively": "aggressive",
    "bold": "aggressive",
    "boldly": "aggressive",
    "risky": "aggressive",
    "riskily": "aggressive",
}
RISK_LEVELS = {"low": "conservative", "medium": "moderate", "high": "aggressive"}
TIMEFRAMES = {"1m", "3m", "5m", "15m", "30m", "45m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d"}
STAGES = ("exploration", "paper", "live")
BUILTIN_STRATEGIES = ("trend_following", "mean_reversion", "breakout", "momentum")
UNITS_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365, "years": 365}
FILLER = {
    "a", "an", "the", "please", "run", "do", "me", "my", "for", "of", "on", "with", "using", "over", "in", "and",
    "to", "from", "profile", "risk", "last", "past", "strategy", "can", "you", "show", "what", "is", "are", "get",
    "check", "how", "now", "today", "some", "give", "tell", "about", "at",
}  # fmt: skip
# words that end a list of markets ('on BTC and ETH under all profiles')
NOT_TICKERS = {
    *FILLER, *PROFILE_WORDS, *TIMEFRAMES, *UNITS_DAYS, *RISK_LEVELS, *STAGES, "all", "every", "each", "under",
    "across", "by", "per", "profiles", "strategies", "timeframes", "sorted", "ranked",
    # what an optimization asks for ('on ETH for sortino', 'return vs drawdown', 'walk-forward')
    "sharpe", "sortino", "calmar", "profit", "return", "returns", "vs", "versus", "against", "drawdown",
    "trials", "trial", "walk", "walk-forward", "forward", "holdout",
    # what makes markets one portfolio ('on BTC and ETH as a portfolio', 'together in one account')
    "as", "portfolio", "together", "combined", "one", "account",
}  # fmt: skip
