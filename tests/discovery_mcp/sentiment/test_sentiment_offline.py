"""The offline sentiment scorer (shipped model) and its training command. Self-contained: no shared data is read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from discovery_mcp.models import DiscoveryError
from discovery_mcp.sentiment.offline import SHIPPED_MODEL, OfflineScorer
from discovery_mcp.sentiment.train import TrainingDataError, main, read_labelled_csv, train
from tests.timeouts import hang_guard

pytestmark = pytest.mark.xdist_group("sentiment-training")  # one xdist worker trains once

# Written for these tests, labelled by the convention of the shipped model's training data (Twitter Financial News):
# bullish/bearish when the news moves the asset's price, neutral for announcements and macro facts without a reaction.
BULLISH = [
    "Apple beats earnings estimates and raises full-year guidance",
    "Nvidia shares hit a record high after blowout quarterly revenue",
    "SEC approves first spot bitcoin ETF, opening the door to billions in inflows",
    "Goldman Sachs upgrades Tesla to buy, lifts price target to $300",
    "Microsoft announces $60 billion share buyback and dividend increase",
    "Eli Lilly jumps 12% as weight-loss drug sales soar",
    "Amazon profit surges past expectations on strong cloud growth",
    "Solana rallies to a new all-time high as trading volume doubles",
    "Ford stock climbs after strong EV sales and upbeat outlook",
    "Wall Street rallies as the Fed signals rate cuts",
]
BEARISH = [
    "Intel cuts revenue guidance and suspends its dividend",
    "Morgan Stanley downgrades Boeing to underweight on delivery delays",
    "SEC sues Coinbase for operating an unregistered securities exchange",
    "Crypto exchange hacked, $200 million stolen in exploit",
    "Retailer files for Chapter 11 bankruptcy protection",
    "Meta to lay off 10,000 workers as ad revenue slumps",
    "Netflix shares plunge 20% after subscriber losses",
    "Bank shares tumble as regional lender reports massive deposit outflows",
    "Oil prices slump on fears of a global recession",
    "Walgreens misses earnings estimates and slashes its outlook",
]
NEUTRAL = [
    "Apple to hold its annual developer conference on June 5",
    "Tesla will report first-quarter results after the market close on Wednesday",
    "Microsoft names new chief financial officer",
    "Company schedules conference call to discuss third quarter results",
    "JPMorgan to present at the Barclays global financial services conference",
    "Alphabet announces date of annual shareholders meeting",
    "The central bank will publish the minutes of its last meeting on Thursday",
    "Shell completes previously announced acquisition of a Singapore refinery",
    "What to watch in the markets this week",
    "Fed cuts interest rates by a quarter point",
]


@pytest.fixture(scope="module")
def scorer() -> OfflineScorer:
    return OfflineScorer.load()


def misses(scorer: OfflineScorer, texts: list[str], label: str) -> list[tuple[str, str, float]]:
    return [(t, s.label, s.score) for t, s in zip(texts, scorer.score_many(texts), strict=True) if s.label != label]


def test_bullish_headlines_score_bullish(scorer):
    assert len(misses(scorer, BULLISH, "bullish")) <= 1, misses(scorer, BULLISH, "bullish")
    assert sum(s.score > 0 for s in scorer.score_many(BULLISH)) >= len(BULLISH) - 1


def test_bearish_headlines_score_bearish(scorer):
    assert len(misses(scorer, BEARISH, "bearish")) <= 1, misses(scorer, BEARISH, "bearish")
    assert sum(s.score < 0 for s in scorer.score_many(BEARISH)) >= len(BEARISH) - 1


def test_most_neutral_announcements_score_neutral(scorer):
    assert len(misses(scorer, NEUTRAL, "neutral")) <= 2, misses(scorer, NEUTRAL, "neutral")


def test_a_downgrade_is_explained_by_the_word_downgrades_with_a_negative_weight(scorer):
    result = scorer.score("Morgan Stanley downgrades Boeing to underweight on delivery delays")
    terms = {c.term: c.weight for c in result.top_terms}
    assert result.label == "bearish"
    assert terms["downgrades"] < 0
    assert result.top_terms[0].term == "downgrades"
    assert all(c.weight < 0 for c in result.top_terms)


def test_an_earnings_beat_is_explained_by_words_of_the_text_with_positive_weights(scorer):
    text = "Apple beats earnings estimates and raises full-year guidance"
    result = scorer.score(text)
    assert result.label == "bullish"
    assert "beats" in [c.term for c in result.top_terms]
    assert 1 <= len(result.top_terms) <= 5
    assert all(c.weight > 0 and c.term in text.lower() for c in result.top_terms)


def test_score_is_bullish_minus_bearish_probability_within_bounds_and_names_the_model(scorer):
    for result in scorer.score_many(BULLISH + BEARISH + NEUTRAL):
        assert -1 <= result.score <= 1
        assert 1 / 3 <= result.confidence <= 1
        assert result.method.startswith("offline:finance-lr+vader/v1-")


@pytest.mark.parametrize("text", ["", "   \n\t", "$AAPL https://t.co/abc123"])
def test_text_without_words_is_neutral_with_zero_score_and_zero_confidence(scorer, text):
    result = scorer.score(text)
    assert (result.label, result.score, result.confidence, result.top_terms) == ("neutral", 0.0, 0.0, [])


def test_scoring_is_deterministic_and_score_many_matches_score(scorer):
    texts = BULLISH + BEARISH + NEUTRAL
    assert scorer.score_many(texts) == [scorer.score(t) for t in texts] == OfflineScorer.load().score_many(texts)


def test_the_shipped_model_credits_its_training_data_and_stays_small():
    data = json.loads(SHIPPED_MODEL.read_text(encoding="utf-8"))
    assert "zeroshot/twitter-financial-news-sentiment" in data["attribution"]
    assert data["trained_on"]["file"] == "twitter_financial_news_train.csv"
    assert SHIPPED_MODEL.stat().st_size < 1_500_000


def test_scoring_does_not_import_scikit_learn():
    code = (
        "import sys; from discovery_mcp.sentiment.offline import OfflineScorer; "
        "OfflineScorer.load().score('Stocks rally'); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=hang_guard(300)
    )
    assert out.stdout.strip() == "False"


# --- training -----------------------------------------------------------------------------------------------------

COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne"]
BULLISH_TEMPLATES = ["{} shares surge after a strong earnings beat", "{} soars on record profit and upgrade"]
BEARISH_TEMPLATES = ["{} shares plunge after a weak guidance cut", "{} tumbles on lawsuit and downgrade"]
NEUTRAL_TEMPLATES = ["{} schedules its annual shareholder meeting", "{} to present at an investor conference"]


def labelled_rows() -> list[tuple[str, str]]:
    rows = []
    for company in COMPANIES:
        rows += [(t.format(company), "1") for t in BULLISH_TEMPLATES]
        rows += [(t.format(company), "0") for t in BEARISH_TEMPLATES]
        rows += [(t.format(company), "2") for t in NEUTRAL_TEMPLATES]
    return rows


def labelled_csv_text(neutral: int) -> str:
    rows = [r for r in labelled_rows() if r[1] != "2"] + [(f"{c} holds steady", "2") for c in COMPANIES[:neutral]]
    return "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows)


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "text,label") -> Path:
    lines = [header] + [f'"{text}",{label}' for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("trained")
    csv_path = write_csv(folder / "labelled.csv", labelled_rows())
    out = folder / "out" / "model.json"
    return out, train(csv_path, out, seed=0)


def test_training_on_a_labelled_csv_writes_a_loadable_model_and_reports_it(trained):
    out, report = trained
    assert report.rows_used == 60
    assert report.class_counts == {"bearish": 20, "neutral": 20, "bullish": 20}
    assert report.model_path == str(out) and report.model_size_bytes == out.stat().st_size
    assert 0 <= report.cv_accuracy <= 1 and 0 <= report.cv_macro_f1 <= 1
    assert [p.name for p in out.parent.iterdir()] == ["model.json"]  # no temp file left behind
    model = OfflineScorer.load(out)
    assert model.model.hyperparameters == report.hyperparameters
    assert model.model.trained_on.rows == 60
    assert model.score("Nakatomi shares surge after a strong earnings beat").label == "bullish"
    assert model.score("Nakatomi shares plunge after a weak guidance cut").label == "bearish"


def test_a_retrained_model_in_home_models_is_used_by_for_home(trained, home):
    out, _ = trained
    assert OfflineScorer.for_home(home).path == SHIPPED_MODEL
    (home / "models").mkdir()
    (home / "models" / "sentiment.json").write_bytes(out.read_bytes())
    assert OfflineScorer.for_home(home).path == home / "models" / "sentiment.json"


@pytest.mark.slow
def test_the_train_command_writes_to_trading_mcp_home_by_default(home, tmp_path, capsys):
    csv_path = write_csv(tmp_path / "labelled.csv", labelled_rows())
    assert main(["--csv", str(csv_path), "--seed", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_path"] == str(home / "models" / "sentiment.json")
    assert OfflineScorer.for_home(home).path == home / "models" / "sentiment.json"


def test_the_train_command_prints_the_problem_and_fails_on_a_bad_csv(tmp_path, capsys):
    csv_path = write_csv(tmp_path / "bad.csv", labelled_rows(), header="text,score")
    assert main(["--csv", str(csv_path), "--out", str(tmp_path / "m.json")]) == 2
    assert "label column" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_word_labels_and_other_column_names_are_read_like_the_digits(tmp_path):
    words = {"0": ["Bearish", "negative", "NEG"], "1": ["bullish", "Positive", "pos"], "2": ["neutral", "NEUTRAL"]}
    rows = [(text, words[digit][i % len(words[digit])]) for i, (text, digit) in enumerate(labelled_rows())]
    texts, labels = read_labelled_csv(write_csv(tmp_path / "words.csv", rows, header="Headline,Sentiment"))
    assert texts == [text for text, _ in labelled_rows()]
    assert labels == [{"0": 0, "2": 1, "1": 2}[digit] for _, digit in labelled_rows()]  # (bearish, neutral, bullish)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "is empty"),
        ("text,score\nup,1\n", "lacks a text column (text/sentence/headline/title) and a label column"),
        ("text,label\n" + "Stocks rise,1\n" * 3 + "Stocks wobble,maybe\n", "line 5: unknown label 'maybe'"),
        ("text,label\n" + "Stocks rise,1\n,0\n", "line 3: the text is empty"),
        ("text,label\n" + "Stocks rise,1\n" * 10, "only 10 labelled rows; at least 30"),
        ("text,label\n" + "Stocks rise,1\n" * 40, "only 1 distinct texts"),
        (labelled_csv_text(neutral=2), "only 2 distinct neutral texts"),
    ],
)
def test_a_bad_csv_is_refused_with_the_problem_and_nothing_is_written(tmp_path, content, expected):
    csv_path = tmp_path / "labelled.csv"
    csv_path.write_text(content, encoding="utf-8")
    out = tmp_path / "models" / "sentiment.json"
    with pytest.raises(TrainingDataError, match=r"labelled\.csv") as info:
        train(csv_path, out)
    assert expected in str(info.value)
    assert not out.parent.exists()


def test_a_missing_csv_is_refused_with_the_path():
    with pytest.raises(TrainingDataError, match="no such file"):
        read_labelled_csv(Path("/nonexistent/labelled.csv"))


# --- model files --------------------------------------------------------------------------------------------------


def user_model(home: Path, content: str) -> Path:
    path = home / "models" / "sentiment.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def test_a_corrupt_user_model_is_refused_naming_the_file_and_the_remedy(home):
    path = user_model(home, '{"format": "trading-mcp/sentiment-mod')
    with pytest.raises(DiscoveryError) as info:
        OfflineScorer.for_home(home)
    assert str(path) in str(info.value)
    assert "not readable JSON" in str(info.value)
    assert "discovery-mcp train" in str(info.value) and "delete the file" in str(info.value)


def test_a_model_of_another_format_version_is_refused_with_the_versions(home):
    data = json.loads(SHIPPED_MODEL.read_text(encoding="utf-8"))
    user_model(home, json.dumps(dict(data, version=99)))
    with pytest.raises(DiscoveryError, match=r"format version is 99; this trading-mcp reads version 1"):
        OfflineScorer.for_home(home)


def test_a_model_with_a_malformed_weight_is_refused_naming_the_field(home):
    data = json.loads(SHIPPED_MODEL.read_text(encoding="utf-8"))
    data["weights"]["downgrades"] = [0.1]
    user_model(home, json.dumps(data))
    with pytest.raises(DiscoveryError, match=r"weights\.downgrades"):
        OfflineScorer.for_home(home)


def test_a_json_file_that_is_no_sentiment_model_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": "world"}', encoding="utf-8")
    with pytest.raises(DiscoveryError, match="is not a sentiment model"):
        OfflineScorer.load(path)


def test_a_missing_model_file_is_refused_naming_it(tmp_path):
    with pytest.raises(DiscoveryError, match=r"missing\.json is unusable: it cannot be read"):
        OfflineScorer.load(tmp_path / "missing.json")
