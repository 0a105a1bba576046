"""Fit the offline sentiment model on a labelled CSV and save it (versioned JSON, written atomically).

Hyperparameters are chosen by grouped, stratified 5-fold cross-validation on the given file only (best mean
macro-F1; copies of the same text stay in one fold). Features come from `discovery_mcp.sentiment.offline`, the code
that scores at runtime, so training and scoring see the same features. Only this module imports scikit-learn.

Run: uv run python -m discovery_mcp.sentiment.train --csv labelled.csv [--out PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import logging
import sys
import time
import warnings
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from scipy import sparse

from discovery_mcp.models import DiscoveryError
from discovery_mcp.sentiment.offline import (
    CLASSES,
    HOME_MODEL,
    MODEL_FORMAT,
    MODEL_NAME,
    MODEL_VERSION,
    VADER_FEATURES,
    Hyperparameters,
    ModelFile,
    TrainedOn,
    term_features,
    tokenize,
    vader_features,
    vader_valences,
)
from shared.state.files import atomic_write_text

log = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "sentence", "headline", "title")
LABEL_COLUMNS = ("label", "sentiment")
# Class index in CLASSES order (bearish, neutral, bullish); digits follow the Twitter Financial News set.
LABELS = {
    "0": 0, "bearish": 0, "negative": 0, "neg": 0,
    "1": 2, "bullish": 2, "positive": 2, "pos": 2,
    "2": 1, "neutral": 1, "neu": 1,
}  # fmt: skip
MIN_ROWS = 30
MIN_PER_CLASS = 5
FOLDS = 5
GRID_C = (0.5, 2.0, 8.0)
GRID_NGRAMS = ((1, 1), (2, 1), (2, 2))  # (max_ngram, min_count_pairs)
GRID_CLASS_WEIGHT = ("none", "balanced")
GRID_VADER = (True, False)
PRUNE_BELOW = 0.05  # in log-odds; keeps the shipped file near 1 MB at a CV cost of ~0.002
MAX_ITER = 2000


class TrainingDataError(DiscoveryError):
    """The labelled CSV cannot be used; the message names the line and what to fix. Nothing was written."""


class TrainReport(BaseModel):
    """What `train` did: the data it used, the setting cross-validation chose, and the file it wrote."""

    rows_used: int
    class_counts: dict[str, int] = Field(description="Rows per label.")
    hyperparameters: Hyperparameters = Field(description="The setting with the best cross-validated macro-F1.")
    cv_folds: int
    cv_accuracy: float = Field(description="Mean accuracy over the folds, fraction 0..1.")
    cv_macro_f1: float = Field(description="Mean macro-F1 over the folds, 0..1.")
    features_kept: int = Field(description="Features with a weight in the saved model.")
    model_path: str
    model_size_bytes: int
    duration_s: float
    warnings: list[str] = Field(default_factory=list, description="Fits that did not fully converge, if any.")


# --- input ------------------------------------------------------------------------------------------------------


def read_labelled_csv(path: Path) -> tuple[list[str], list[int]]:
    """Texts and class indices (CLASSES order) from a CSV with a header row; errors name the line and the fix."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return _read_rows(csv.DictReader(f), path)
    except FileNotFoundError as exc:
        raise TrainingDataError(f"{path}: no such file. Pass the labelled CSV with --csv.") from exc
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{path}: not UTF-8 text ({exc.reason}). Save the CSV as UTF-8.") from exc
    except csv.Error as exc:
        raise TrainingDataError(f"{path}: not a readable CSV ({exc}).") from exc


def _read_rows(reader: csv.DictReader, path: Path) -> tuple[list[str], list[int]]:
    want = f"a text column ({'/'.join(TEXT_COLUMNS)}) and a label column ({'/'.join(LABEL_COLUMNS)})"
    if not reader.fieldnames:
        raise TrainingDataError(f"{path} is empty: it needs a header row with {want}, then one row per text.")
    columns = {(name or "").strip().lower(): name for name in reader.fieldnames}
    text_col = next((columns[c] for c in TEXT_COLUMNS if c in columns), None)
    label_col = next((columns[c] for c in LABEL_COLUMNS if c in columns), None)
    if text_col is None or label_col is None:
        raise TrainingDataError(f"{path} line 1: the header {reader.fieldnames} lacks {want}. Rename the columns.")
    texts, labels = [], []
    for row in reader:
        text, raw = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
        if not text:
            raise TrainingDataError(f"{path} line {reader.line_num}: the text is empty. Fill it in or delete the row.")
        label = LABELS.get(raw.lower())
        if label is None:
            raise TrainingDataError(
                f"{path} line {reader.line_num}: unknown label {raw!r}. Use 0/1/2 (0 bearish, 1 bullish, 2 neutral) "
                "or bearish/negative, bullish/positive, neutral."
            )
        texts.append(text)
        labels.append(label)
    _check_counts(path, texts, labels)
    return texts, labels


def _check_counts(path: Path, texts: list[str], labels: list[int]) -> None:
    """Enough distinct texts overall and per class for 5 cross-validation folds that keep copies together."""
    if len(labels) < MIN_ROWS:
        raise TrainingDataError(f"{path}: only {len(labels)} labelled rows; at least {MIN_ROWS} are needed.")
    same = " (rows that differ only in numbers, links, tickers, case or punctuation count once)"
    distinct = {(g, label) for g, label in zip(_duplicate_groups(texts), labels, strict=True)}
    if len({g for g, _ in distinct}) < MIN_ROWS:
        raise TrainingDataError(
            f"{path}: only {len({g for g, _ in distinct})} distinct texts{same}; at least {MIN_ROWS} are needed."
        )
    counts = Counter(label for _, label in distinct)
    for index, name in enumerate(CLASSES):
        if counts[index] < MIN_PER_CLASS:
            raise TrainingDataError(
                f"{path}: only {counts[index]} distinct {name} texts{same}; each of bearish, neutral and bullish "
                f"needs at least {MIN_PER_CLASS}. Add {name} examples."
            )


# --- features ---------------------------------------------------------------------------------------------------


class Featurized:
    """Every text's feature keys (words, stems, word pairs) and VADER sums, extracted once."""

    def __init__(self, texts: list[str]):
        self.keys: list[list[str]] = []
        vader = []
        for text in texts:
            tokens = tokenize(text)
            self.keys.append(list(term_features(tokens, max_ngram=2)))
            vader.append(vader_features(vader_valences(tokens)))
        self.vader = np.array(vader, dtype=np.float64).reshape(len(texts), 2)

    def counts(self, rows: np.ndarray) -> Counter[str]:
        """In how many of `rows` each feature key occurs."""
        return Counter(k for i in rows for k in self.keys[i])

    @staticmethod
    def vocabulary(counts: Counter[str], hp: Hyperparameters) -> list[str]:
        """Every word and stem, word pairs seen in `min_count_pairs` rows or more, then the VADER sums if used."""
        keep = [k for k, n in counts.items() if " " not in k or (hp.max_ngram == 2 and n >= hp.min_count_pairs)]
        return sorted(keep) + (list(VADER_FEATURES) if hp.vader else [])

    def matrix(self, rows: np.ndarray, vocab: list[str]) -> sparse.csr_matrix:
        """Binary word/stem/pair columns, then the two VADER sums when the vocabulary ends with them."""
        index = {k: j for j, k in enumerate(vocab)}
        with_vader = vocab[-len(VADER_FEATURES) :] == list(VADER_FEATURES)
        indptr, indices, values = [0], [], []
        for i in rows:
            columns = sorted({index[k] for k in self.keys[i] if k in index})
            values.extend([1.0] * len(columns))
            if with_vader:
                columns += [len(vocab) - 2, len(vocab) - 1]
                values.extend(self.vader[i])
            indices.extend(columns)
            indptr.append(len(indices))
        return sparse.csr_matrix((values, indices, indptr), shape=(len(rows), len(vocab)))


# --- fitting ----------------------------------------------------------------------------------------------------


def _fit(x, y: np.ndarray, hp: Hyperparameters, notes: list[str]):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        C=hp.c, max_iter=MAX_ITER, class_weight=None if hp.class_weight == "none" else "balanced"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            notes.append(f"{hp.model_dump()}: not converged after {MAX_ITER} iterations")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


def _grid() -> list[Hyperparameters]:
    return [
        Hyperparameters(c=c, max_ngram=n, min_count_pairs=m, class_weight=cw, vader=v, prune_below=PRUNE_BELOW)
        for c, (n, m), cw, v in itertools.product(GRID_C, GRID_NGRAMS, GRID_CLASS_WEIGHT, GRID_VADER)
    ]


def cross_validate(
    data: Featurized, texts: list[str], y: np.ndarray, seed: int, notes: list[str]
) -> tuple[Hyperparameters, float, float]:
    """The grid setting with the best mean macro-F1 (ties: accuracy), with its mean accuracy and macro-F1."""
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedGroupKFold

    groups = _duplicate_groups(texts)
    grid = _grid()
    scores: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(grid))}
    for fold, (train_rows, test_rows) in enumerate(
        StratifiedGroupKFold(FOLDS, shuffle=True, random_state=seed).split(texts, y, groups)
    ):
        counts = data.counts(train_rows)
        for members in _same_features(grid):
            vocab = data.vocabulary(counts, grid[members[0]])
            x_train, x_test = data.matrix(train_rows, vocab), data.matrix(test_rows, vocab)
            for i in members:
                model = _fit(x_train, y[train_rows], grid[i], notes)
                predicted = _predict_pruned(model, x_test, vocab, grid[i].prune_below)
                f1 = f1_score(y[test_rows], predicted, labels=[0, 1, 2], average="macro", zero_division=0.0)
                scores[i].append((float(f1), float(accuracy_score(y[test_rows], predicted))))
        log.info("cross-validation: fold %d of %d done (%d settings)", fold + 1, FOLDS, len(grid))
    results = [(*np.mean(scores[i], axis=0).tolist(), grid[i]) for i in range(len(grid))]
    for macro_f1, accuracy, hp in results:
        log.info("cv %s: accuracy %.4f, macro-F1 %.4f", hp.model_dump(), accuracy, macro_f1)
    macro_f1, accuracy, best = max(results, key=lambda r: (round(r[0], 4), round(r[1], 4)))
    return best, accuracy, macro_f1


def _same_features(grid: list[Hyperparameters]) -> list[list[int]]:
    """Grid indices grouped by feature setting (pairs, their min count, VADER): one matrix serves each group."""
    groups: dict[tuple, list[int]] = {}
    for i, hp in enumerate(grid):
        groups.setdefault((hp.max_ngram, hp.min_count_pairs, hp.vader), []).append(i)
    return list(groups.values())


def _duplicate_groups(texts: list[str]) -> list[int]:
    """Texts with the same words (e.g. one headline from several accounts) share a group, so a fold keeps them."""
    ids: dict[str, int] = {}
    return [ids.setdefault(" ".join(tokenize(t)), len(ids)) for t in texts]


def _kept(coef: np.ndarray, vocab: list[str], prune_below: float) -> np.ndarray:
    """Columns the saved model keeps: the VADER sums, and features with a weight of at least `prune_below`."""
    keep = np.abs(coef).max(axis=0) >= prune_below
    keep[[j for j, key in enumerate(vocab) if key in VADER_FEATURES]] = True
    return keep


def _predict_pruned(model, x, vocab: list[str], prune_below: float) -> np.ndarray:
    """Predictions of the model as it would be saved, so cross-validation measures the shipped file."""
    if len(model.classes_) < 3:  # a fold without one class (all its rows are copies of one text)
        return model.predict(x)
    coef = np.where(_kept(model.coef_, vocab, prune_below), model.coef_, 0.0)
    return model.classes_[np.argmax(x @ coef.T + model.intercept_, axis=1)]


def _relative(values: np.ndarray) -> tuple[float, float]:
    """(bearish, bullish) minus neutral: the softmax is unchanged and neutral needs no column."""
    return (round(float(values[0] - values[1]), 3), round(float(values[2] - values[1]), 3))


def _weights(model, vocab: list[str], prune_below: float) -> dict[str, tuple[float, float]]:
    coef = np.asarray(model.coef_)
    keep = _kept(coef, vocab, prune_below)
    return {key: _relative(coef[:, j]) for j, key in enumerate(vocab) if keep[j]}


# --- entry points -----------------------------------------------------------------------------------------------


def train(csv_path: Path, out_path: Path, *, seed: int = 0, attribution: str | None = None) -> TrainReport:
    """Fit on `csv_path`, choose hyperparameters by cross-validation, write the model to `out_path` atomically."""
    started = time.perf_counter()
    csv_path, out_path = Path(csv_path), Path(out_path)
    texts, labels = read_labelled_csv(csv_path)
    y = np.array(labels)
    data = Featurized(texts)
    notes: list[str] = []
    hp, cv_accuracy, cv_macro_f1 = cross_validate(data, texts, y, seed, notes)
    rows = np.arange(len(texts))
    vocab = data.vocabulary(data.counts(rows), hp)
    model = _fit(data.matrix(rows, vocab), y, hp, notes)
    weights = _weights(model, vocab, hp.prune_below)
    saved = ModelFile(
        format=MODEL_FORMAT,
        version=MODEL_VERSION,
        name=MODEL_NAME,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        trained_on=TrainedOn(
            file=csv_path.name, sha256=hashlib.sha256(csv_path.read_bytes()).hexdigest(), rows=len(texts)
        ),
        attribution=attribution,
        hyperparameters=hp,
        cv_accuracy=round(cv_accuracy, 4),
        cv_macro_f1=round(cv_macro_f1, 4),
        classes=CLASSES,
        reference_class="neutral",
        intercepts=_relative(model.intercept_),
        weights=weights,
    )
    size = _write_model(saved, out_path)
    counts = Counter(labels)
    return TrainReport(
        rows_used=len(texts),
        class_counts={name: counts[i] for i, name in enumerate(CLASSES)},
        hyperparameters=hp,
        cv_folds=FOLDS,
        cv_accuracy=round(cv_accuracy, 4),
        cv_macro_f1=round(cv_macro_f1, 4),
        features_kept=len(weights),
        model_path=str(out_path),
        model_size_bytes=size,
        duration_s=round(time.perf_counter() - started, 1),
        warnings=notes,
    )


def _write_model(saved: ModelFile, out_path: Path) -> int:
    """Write the model as compact JSON, atomically; returns its size in bytes."""
    text = json.dumps(saved.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False) + "\n"
    try:
        atomic_write_text(out_path, text)
    except OSError as exc:
        raise DiscoveryError(
            f"Could not write the sentiment model to {out_path}: {exc.strerror or exc}. "
            "Pass another --out, or make the folder writable."
        ) from exc
    return len(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    from shared.config.store import trading_home

    parser = argparse.ArgumentParser(prog="discovery-mcp train", description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, required=True, help="Labelled CSV: text column and label column.")
    parser.add_argument("--out", type=Path, help="Model file to write (default: $TRADING_MCP_HOME/models/...).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the cross-validation folds.")
    parser.add_argument("--attribution", help="Credit for the training data, stored in the model file.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    out = args.out if args.out is not None else trading_home() / HOME_MODEL
    try:
        report = train(args.csv, out, seed=args.seed, attribution=args.attribution)
    except DiscoveryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
