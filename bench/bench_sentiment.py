"""The offline sentiment scorer on the Twitter Financial News validation split (never used for training or tuning).

1. Accuracy and macro-F1 of the shipped model (`discovery_mcp/data/finance_sentiment.json`, trained on the train split
   only). Targets: accuracy >= 0.82, macro-F1 >= 0.75. Baselines, same run: plain VADER (compound >= 0.05 bullish,
   <= -0.05 bearish, else neutral) and always-neutral.
2. Throughput of `OfflineScorer.score_many` on one core: the validation texts repeated to >= 20,000 headlines.
   Target: >= 10,000 headlines/s. Printed, never asserted. VADER's own polarity_scores rate for reference.

Data: twitter_financial_news_valid.csv (columns text,label; 0 bearish, 1 bullish, 2 neutral) in
../shared/data/sentiment/ next to the repo, or the folder given as the first argument or in $SENTIMENT_DATA_DIR.

Run: uv run python bench/bench_sentiment.py [DATA_DIR]
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from discovery_mcp.sentiment.offline import SHIPPED_MODEL, OfflineScorer, stem  # noqa: E402

VALID_FILE = "twitter_financial_news_valid.csv"
DATASET_LABELS = {"0": "bearish", "1": "bullish", "2": "neutral"}
MIN_TEXTS = 20_000


def data_dir() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    return Path(os.environ.get("SENTIMENT_DATA_DIR") or ROOT.parent / "shared" / "data" / "sentiment")


def load_valid(folder: Path) -> tuple[list[str], list[str]]:
    path = folder / VALID_FILE
    if not path.is_file():
        sys.exit(
            f"{path} not found. Put the Twitter Financial News splits (zeroshot/twitter-financial-news-sentiment) "
            "there, or pass their folder as the first argument or in SENTIMENT_DATA_DIR."
        )
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [DATASET_LABELS[r["label"].strip()] for r in rows]


def metrics(truth: list[str], predicted: list[str]) -> tuple[float, float]:
    """Accuracy and macro-F1 over bearish, neutral, bullish."""
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    f1s = []
    for label in ("bearish", "neutral", "bullish"):
        tp = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(p == label != t for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label != p for t, p in zip(truth, predicted, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return accuracy, sum(f1s) / len(f1s)


def vader_label(compound: float) -> str:
    return "bullish" if compound >= 0.05 else "bearish" if compound <= -0.05 else "neutral"


def pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity here)"


def main() -> None:
    texts, truth = load_valid(data_dir())
    pinned = pin_one_core()
    t0 = time.perf_counter()
    scorer = OfflineScorer.load()
    load_ms = (time.perf_counter() - t0) * 1000
    print(f"model: {scorer.method}, {SHIPPED_MODEL.stat().st_size / 1e6:.2f} MB, {len(scorer.model.weights)} weights")
    print(f"  hyperparameters: {scorer.model.hyperparameters.model_dump()}, loaded in {load_ms:.0f} ms")
    print(f"validation split: {len(texts)} texts, {truth.count('neutral') / len(truth):.3f} neutral")
    predicted = [s.label for s in scorer.score_many(texts)]
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    rows = [
        ("offline scorer", metrics(truth, predicted), "target >= 0.82 / >= 0.75"),
        ("plain VADER", metrics(truth, [vader_label(vader.polarity_scores(t)["compound"]) for t in texts]), ""),
        ("always neutral", metrics(truth, ["neutral"] * len(texts)), ""),
    ]
    print(f"{'':16} {'accuracy':>9} {'macro-F1':>9}")
    for name, (accuracy, macro_f1), note in rows:
        print(f"{name:16} {accuracy:9.3f} {macro_f1:9.3f}  {note}")

    batch = texts * -(-MIN_TEXTS // len(texts))
    stem.cache_clear()
    t0 = time.perf_counter()
    scorer.score_many(batch)
    rate = len(batch) / (time.perf_counter() - t0)
    stem.cache_clear()
    t0 = time.perf_counter()
    scorer.score_many(texts)
    cold_rate = len(texts) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for t in texts:
        vader.polarity_scores(t)
    vader_rate = len(texts) / (time.perf_counter() - t0)
    print(f"throughput ({pinned}): score_many {rate:,.0f} headlines/s on {len(batch):,} headlines (target >= 10,000)")
    print(f"  each text once, stem cache empty: {cold_rate:,.0f} headlines/s")
    print(f"  for reference, VADER polarity_scores alone: {vader_rate:,.0f} headlines/s")


if __name__ == "__main__":
    main()
