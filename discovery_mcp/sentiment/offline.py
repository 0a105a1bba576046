"""The offline, finance-aware sentiment scorer: VADER's lexicon plus a linear model over words and phrases.

Features of a text (the same function serves training in `discovery_mcp.sentiment.train` and scoring here):
- its words (lowercased; links and cashtags dropped; percentages, amounts and numbers become `<pct_up>`,
  `<pct_down>`, `<pct>`, `<money>`, `<num>`), their stems (`~downgrad`) and adjacent word pairs;
- `vader:pos` and `vader:neg`: the sums of VADER lexicon valences (with VADER's negation rule) of its words, so that
  a sentiment word the training text never used still counts.
A multinomial logistic regression gives each feature two weights: its push on log(P(bearish) / P(neutral)) and on
log(P(bullish) / P(neutral)). Every feature belongs to words of the text, so the explanation (`top_terms`) is exact: a
term's weight is its push on log(P(bullish) / P(bearish)), the bullish weight minus the bearish one.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from discovery_mcp.models import Contribution, DiscoveryError, Label, Sentiment

MODEL_FORMAT = "trading-mcp/sentiment-model"
MODEL_VERSION = 1
MODEL_NAME = "finance-lr+vader"
CLASSES: tuple[Label, Label, Label] = ("bearish", "neutral", "bullish")
VADER_FEATURES = ("vader:pos", "vader:neg")
SHIPPED_MODEL = Path(__file__).parent / "data" / "finance_sentiment.json"
HOME_MODEL = Path("models") / "sentiment.json"
TOP_TERMS = 5
_VADER_SCALE = 4.0  # VADER valences run -4..+4

_LINK_OR_CASHTAG = re.compile(r"https?://\S+|www\.\S+|\$[a-z][a-z0-9.]{0,9}\b")
# A number is matched only from its first digit (the lookbehinds), so a run of digits is scanned once, not once per
# digit (which made a 2,000-character text of digits take a second).
_NUMBER_START = r"(?<!\d)(?<!\d[.,])"
_PCT = re.compile(rf"([+-]?){_NUMBER_START}\d+(?:[.,]\d+)*\s?%")
_MONEY = re.compile(r"[$€£]\s?\d[\d,.]*\s?(?:[kmb]n?|million|billion|trillion)?\b")
_NUM = re.compile(rf"{_NUMBER_START}\d+(?:[.,]\d+)*(?:st|nd|rd|th|[kmbx])?\b")
_TOKEN = re.compile(r"<\w+>|[a-z]+(?:'[a-z]+)*")
_PCT_TOKENS = {"+": " <pct_up> ", "-": " <pct_down> ", "": " <pct> "}


class Hyperparameters(BaseModel):
    c: float = Field(gt=0, description="Inverse L2 regularisation strength of the logistic regression.")
    max_ngram: Literal[1, 2] = Field(description="1: words and stems; 2: also adjacent word pairs.")
    min_count_pairs: int = Field(ge=1, description="Word pairs seen in fewer training rows are left out.")
    class_weight: Literal["none", "balanced"]
    vader: bool = Field(description="Whether the VADER lexicon sums are features.")
    prune_below: float = Field(ge=0, description="Features whose largest absolute weight is below this are dropped.")


class TrainedOn(BaseModel):
    file: str
    sha256: str
    rows: int


class ModelFile(BaseModel):
    """The saved model: metadata, then (bearish, bullish) log-odds against neutral: intercepts and per feature."""

    model_config = ConfigDict(allow_inf_nan=False)

    format: Literal["trading-mcp/sentiment-model"]
    version: Literal[1]
    name: str
    created_utc: str
    trained_on: TrainedOn
    attribution: str | None = None
    hyperparameters: Hyperparameters
    cv_accuracy: float | None = None
    cv_macro_f1: float | None = None
    classes: tuple[Literal["bearish"], Literal["neutral"], Literal["bullish"]]
    reference_class: Literal["neutral"] = Field(description="Its logit is 0; the weights are relative to it.")
    intercepts: tuple[float, float] = Field(description="Bearish and bullish log-odds against neutral.")
    weights: dict[str, tuple[float, float]] = Field(description="Feature -> (bearish, bullish) log-odds push.")


# --- features ---------------------------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lowercase words of `text`; links and cashtags dropped; numbers become class tokens (<pct_up>, <money>)."""
    t = text.lower().replace("\u2019", "'")
    t = _LINK_OR_CASHTAG.sub(" ", t)
    t = _PCT.sub(lambda m: _PCT_TOKENS[m.group(1)], t)
    t = _MONEY.sub(" <money> ", t)
    t = _NUM.sub(" <num> ", t)
    return _TOKEN.findall(t)


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude suffix stripper (no stemming library is installed): downgrades/downgraded/downgrade -> downgrad."""
    if len(word) <= 3 or word[0] == "<":
        return word
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "ed" and word.endswith("ied"):
                return word[:-3] + "y"
            word = word[: -len(suffix)]
            if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us")):
        word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


@functools.cache
def _vader() -> tuple[dict[str, float], frozenset[str], float]:
    # VADER's polarity_scores costs ~25 us a headline; its lexicon and negation rule alone, with our tokens, are cheap.
    from vaderSentiment.vaderSentiment import N_SCALAR, NEGATE, SentimentIntensityAnalyzer

    lexicon = {w: v for w, v in SentimentIntensityAnalyzer().lexicon.items() if _TOKEN.fullmatch(w)}
    return lexicon, frozenset(NEGATE), N_SCALAR


def vader_valences(tokens: list[str]) -> list[tuple[str, float]]:
    """(word, valence / 4) for each VADER lexicon word, flipped and damped when one of the 3 words before negates."""
    lexicon, negate, n_scalar = _vader()
    out = []
    for i, tok in enumerate(tokens):
        valence = lexicon.get(tok)
        if valence is None:
            continue
        if any(p in negate or p.endswith("n't") for p in tokens[max(0, i - 3) : i]):
            valence *= n_scalar
        out.append((tok, valence / _VADER_SCALE))
    return out


def term_features(tokens: list[str], max_ngram: int) -> dict[str, str]:
    """Binary features of the tokens: feature key -> the words of the text it stands for."""
    keys: dict[str, str] = {}
    for tok in tokens:
        keys.setdefault(tok, tok)
        keys.setdefault("~" + stem(tok), tok)
    if max_ngram >= 2:
        for a, b in itertools.pairwise(tokens):
            pair = a + " " + b
            keys.setdefault(pair, pair)
    return keys


def vader_features(valences: Iterable[tuple[str, float]]) -> tuple[float, float]:
    """(`vader:pos`, `vader:neg`): the sums of positive and of (absolute) negative valences."""
    pos = neg = 0.0
    for _, v in valences:
        if v > 0:
            pos += v
        else:
            neg -= v
    return pos, neg


# --- the scorer -------------------------------------------------------------------------------------------------


class OfflineScorer:
    """Scores text with a saved model; no network, no sklearn, deterministic."""

    def __init__(self, model: ModelFile, path: Path):
        self.path = path
        self.model = model
        self.method = f"offline:{model.name}/v{model.version}-{model.trained_on.sha256[:8]}"
        self._weights = model.weights
        self._intercepts = model.intercepts
        self._max_ngram = model.hyperparameters.max_ngram
        zero = (0.0, 0.0)
        self._vader_pos = model.weights.get("vader:pos", zero) if model.hyperparameters.vader else None
        self._vader_neg = model.weights.get("vader:neg", zero) if model.hyperparameters.vader else None

    @classmethod
    def load(cls, path: Path | None = None) -> OfflineScorer:
        """The model at `path` (default: the shipped one). Raises DiscoveryError if the file is unusable."""
        path = Path(path) if path is not None else SHIPPED_MODEL
        try:
            st = path.stat()
        except OSError as exc:
            raise _model_error(path, f"it cannot be read ({exc.strerror or exc})") from exc
        return cls(_load_model(path.resolve(), st.st_mtime_ns, st.st_size), path)

    @classmethod
    def for_home(cls, home: Path) -> OfflineScorer:
        """The user's retrained model `home/models/sentiment.json` when present, else the shipped model."""
        user = Path(home) / HOME_MODEL
        return cls.load(user if user.exists() else None)

    def score(self, text: str) -> Sentiment:
        return self._score(text)

    def score_many(self, texts: list[str]) -> list[Sentiment]:
        with _gc_paused():
            return [self._score(t) for t in texts]

    def _score(self, text: str) -> Sentiment:
        tokens = tokenize(text)
        if not tokens:
            # No words (empty, whitespace, only links or tickers): no evidence either way.
            return Sentiment(score=0.0, label="neutral", confidence=0.0, method=self.method)
        logits, pushes = self._logits(tokens)
        top = max(logits)
        exps = [math.exp(x - top) for x in logits]
        total = sum(exps)
        probs = [e / total for e in exps]
        best = max(range(3), key=probs.__getitem__)
        label = CLASSES[best]
        return Sentiment(
            score=round(min(1.0, max(-1.0, probs[2] - probs[0])), 4),
            label=label,
            confidence=round(min(1.0, probs[best]), 4),
            method=self.method,
            top_terms=_top_terms(pushes, label),
        )

    def _logits(self, tokens: list[str]) -> tuple[list[float], dict[str, float]]:
        """Class logits and each term's push toward bullish (weight_bullish - weight_bearish, summed per term)."""
        weights = self._weights
        bear, bull = self._intercepts
        pushes: dict[str, float] = {}
        for key, term in term_features(tokens, self._max_ngram).items():
            w = weights.get(key)
            if w is not None:
                bear += w[0]
                bull += w[1]
                pushes[term] = pushes.get(term, 0.0) + w[1] - w[0]
        if self._vader_pos is not None:
            for word, v in vader_valences(tokens):
                w = self._vader_pos if v > 0 else self._vader_neg
                x = abs(v)
                bear += w[0] * x
                bull += w[1] * x
                pushes[word] = pushes.get(word, 0.0) + (w[1] - w[0]) * x
        return [bear, 0.0, bull], pushes


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the results hold no cycles, and the full collections triggered by ~20 new tracked objects
    per result cost ~40% of a batch's time (measured); reference counting still frees every temporary."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _top_terms(pushes: dict[str, float], label: Label) -> list[Contribution]:
    """The terms that pushed hardest toward the label; for neutral, the strongest either way."""
    if label == "bullish":
        items = sorted(((-p, t) for t, p in pushes.items() if p > 0))
    elif label == "bearish":
        items = sorted(((p, t) for t, p in pushes.items() if p < 0))
    else:
        items = sorted((-abs(p), t) for t, p in pushes.items() if p)
    return [Contribution(term=t, weight=round(pushes[t], 3)) for _, t in items[:TOP_TERMS]]


@functools.lru_cache(maxsize=8)
def _load_model(path: Path, mtime_ns: int, size: int) -> ModelFile:
    """Parsed and validated once per file version (path, mtime, size): a retrained file is read again."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _model_error(path, f"it is not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise _model_error(path, f'it is not a sentiment model (no "format": "{MODEL_FORMAT}")')
    if data.get("version") != MODEL_VERSION:
        raise _model_error(
            path, f"its format version is {data.get('version')!r}; this trading-mcp reads version {MODEL_VERSION}"
        )
    try:
        return ModelFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _model_error(path, f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from exc


def _model_error(path: Path, problem: str) -> DiscoveryError:
    if Path(path).resolve() == SHIPPED_MODEL.resolve():
        remedy = "The shipped model is damaged: reinstall trading-mcp."
    else:
        remedy = (
            f"Retrain it with `discovery-mcp train --csv <labelled.csv> --out {path}`, "
            "or delete the file to use the shipped model."
        )
    return DiscoveryError(f"Sentiment model file {path} is unusable: {problem}. {remedy}")
