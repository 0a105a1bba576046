"""Does third-party text address the reader? Instructions to a model, chat role markers, orders to trade aimed at
whoever reads it, or text hidden from a person but not from a model.

A flagged story is still shown (as data, with the reasons) but counts toward no sentiment and no opportunity. The
check reads the text as the feed delivered it (before `normalise.plain_text`, which would erase hidden characters),
bounded in length first. It looks for phrases aimed at the reader, not for words: "Analysts say buy the dip" and
"BlackRock buys more bitcoin" report trades; "Buy now." and "Ignore previous instructions" give orders. Orders to
trade count only at the start of a clause and not in reported speech ("Sell everything, says RBS").

Every pattern runs in linear time: alternations of fixed phrases, no nested or overlapping repetition.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

from discovery_mcp.models import InjectionVerdict

RAW_MAX_CHARS = 12_000  # per field: a summary's markup is read only this far (as plain_text reads it)
QUOTE_MAX = 50

# Zero-width characters (and the word joiner, BOM, Mongolian vowel separator) and bidi controls.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_TAG_CHARS = re.compile("[\U000e0000-\U000e007f]")  # invisible "tag" letters that spell out hidden ASCII
_HIDDEN_IN_WORD = re.compile(f"[a-z0-9][{_ZERO_WIDTH}]+[a-z0-9]", re.IGNORECASE)  # Latin: ZWNJ joins Persian words
_INVISIBLE = re.compile(f"[{_ZERO_WIDTH}{_BIDI}\u200e\u200f\u00ad]|[\U000e0000-\U000e007f]")
_HIDDEN_STYLE = re.compile(
    r"display: ?none|visibility: ?hidden|font-size: ?0(?![.\d]*[1-9])|opacity: ?0(?![.\d]*[1-9])"
)
# Latin look-alikes from Cyrillic and Greek, so that "ignоre" (Cyrillic o) reads as "ignore".
_CONFUSABLES = str.maketrans("аеорсухіјѕԁɡοαεικνρτυχ", "aeopcyxijsdgoaeiknptux")
_SPACES = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})

# The start of a clause (text start, after sentence or clause punctuation), optionally softened or pressed.
_START = r"(?:^|[.!?;:,|>\])\"'*#-] ?)(?:please |kindly |now |urgent:? |you (?:must|should|need to|have to) )?"
_OBJECTS = (
    r"(?:instructions?|prompts?|rules|directives|directions|guidelines|commands|guardrails|messages|context"
    r"|programming|constraints|system prompt)"
)
_VERBS = r"(?:ignore|disregard|forget|override|bypass|discard|neglect)"
_QUALIFIERS = r"(?:previous|prior|above|earlier|preceding|original|initial|system|safety|existing|former|old)"
_ASSETS = r"(?:funds|money|crypto|coins|tokens|bitcoin|btc|eth|ether|usdt|usdc|sol|savings|assets|balance|holdings)"
_DESTINATION = (
    r" (?:to|into) (?:this|the following|my|our|that|the|a) (?:address|wallet|account)|"
    r" to (?:0x[0-9a-f]{6}|bc1[0-9a-z]{6})"
)

_DETERMINER = r"(?:your |the |these |those |my |any )"
_AI = r"(?:ai|llm|language model|large language model)"
_AT_ONCE = r"(?:now|immediately|right now|asap|at once)"

_MODEL = "instruction to a model"
_ROLE = "chat role marker"
_ORDER = "order to trade"
_LURE = "lure aimed at the reader"
_IMAGE = "hidden call-out"  # quoted by name only: its text is the third party's

# (kind, pattern). Patterns run on casefolded text with single spaces.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(p))
    for kind, p in (
        (_MODEL, rf"\b{_VERBS} (?:all |any |the )?(?:of )?{_DETERMINER}?{_QUALIFIERS} {_OBJECTS}"),
        (_MODEL, rf"\b{_VERBS} (?:all of your|all your|your) (?:{_OBJECTS}|training)"),
        (_MODEL, rf"\b{_VERBS} (?:everything|all|anything) (?:above|before|prior|you (?:were|have been) told)"),
        (_MODEL, rf"\b{_VERBS} the above\b"),
        (_MODEL, rf"{_START}(?:you are now|from now on,? you (?:are|will|must))\b"),
        (_MODEL, rf"{_START}(?:pretend (?:to be|you are|that you are)|act as (?:if you|a |an |my ))"),
        (_MODEL, rf"\bas an? {_AI}(?: language model| model| assistant)?(?:,| you\b)"),
        (_MODEL, r"\byou are an? (?:ai |helpful |large )?(?:language model|assistant|chatbot|llm)\b"),
        (_MODEL, r"\b(?:new|updated|real|actual|hidden|secret|additional|important) instructions? ?:"),
        (_MODEL, rf"\b(?:reveal|print|output|repeat|leak) (?:me )?your {_OBJECTS}"),
        (_MODEL, r"\b(?:tell|inform|advise|convince|instruct|remind) the user\b|\bdo not (?:tell|inform) the user\b"),
        (_MODEL, r"\b(?:call|invoke|execute|run) (?:the )?[a-z]+_[a-z_]*(?: tool| function)?\b"),
        (_ROLE, rf"{_START}(?:system|assistant|developer|human|user|system prompt|instructions?) ?:"),
        (_ROLE, r"<\|[a-z_]+\|>|\[/?inst\]|<</?sys>>|</?(?:system|instructions?|prompt|assistant|im_start)>"),
        (_ROLE, r"#{2,6} ?(?:system|instructions?|assistant|user|response|prompt)\b"),
        (_ROLE, rf"{_START}(?:hey|dear|attention|note to|hello|hi),? (?:the )?(?:ai|model|bot|agent|llm|assistant"
                r"|chatgpt|claude|gpt|gemini)\b"),
        (_ROLE, rf"{_START}(?:assistant|chatbot|ai assistant|ai model|language model|llm) ?[,:!]"),
        (_ORDER, rf"{_START}(?:buy|sell|dump|short) {_AT_ONCE}(?!,? pay later)(?! ?\?)"),
        (_ORDER, rf"{_START}(?:buy|sell|dump|short) [$a-z0-9]+ (?:now|immediately|right now|asap)(?! ?\?)"),
        (_ORDER, rf"{_START}(?:sell|liquidate|cash out|dump) (?:everything|all of your|all your|your entire)\b"),
        (_ORDER, rf"{_START}(?:go all[ -]in|put (?:all |everything )?your (?:money|savings|funds|crypto) (?:in|on))\b"),
        (_ORDER, rf"{_START}(?:send|transfer|wire|deposit|move) (?:all your |all of your |your |all )?{_ASSETS}"
                 rf"(?:{_DESTINATION})"),
        (_ORDER, rf"{_START}(?:send|transfer|wire) (?:all your|all of your|your) {_ASSETS}\b"),
        (_LURE, rf"{_START}click (?:here|this link|the link|below) (?:to |and )(?:claim|connect|verify|get|receive"
                r"|buy|sell|withdraw|unlock|win|invest)"),
        (_LURE, rf"{_START}(?:connect|verify|validate|sync) your wallet\b"),
        (_LURE, rf"{_START}claim your (?:free )?(?:airdrop|reward|tokens|bonus|prize)\b"),
        (_LURE, r"\b(?:enter|share|send|type) your (?:seed phrase|private key|recovery phrase|mnemonic)\b"),
        (_IMAGE, r"!\[[^\]\n]*\]\((?:https?:|//)"),  # a markdown image: rendering it calls out to the address
    )
)  # fmt: skip
# Reported speech: an order quoted from someone is news, not an order to the reader.
_ATTRIBUTION = re.compile(
    r"\b(?:says?|said|warns?|warned|urges?|urged|tells?|told|advises?|advised|according to|analysts?|strategists?)\b"
)
_ATTRIBUTED_BEFORE = re.compile(
    r"\b(?:says?|said|warns?|urges?|advises?|tells? \w+|told \w+|analysts?|strategists?|experts?|economists?|ceo"
    r"|traders?|bank) ?[:,]? ?[\"']? ?$"
)
# Role tags that an HTML reading would swallow as elements ("<system>"): looked for in the raw text too.
_RAW_TAGS = re.compile(r"</?(?:system|instructions?|prompt|assistant|user|im_start|im_end)>")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


class _Markup(HTMLParser):
    """The text of markup, including comments (a model may be shown them), and whether styling hides any of it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_text = False
        self._hidden_depth = 0  # open elements since (and including) the outermost hidden one
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        hides = any(k == "hidden" or (k == "style" and v and _HIDDEN_STYLE.search(v.lower())) for k, v in attrs)
        if tag not in _VOID and (self._hidden_depth or hides):
            self._hidden_depth += 1
        self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(" ")  # a void element (<img/>) holds no text to hide

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if self._hidden_depth and tag not in _VOID:
            self._hidden_depth -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._hidden_depth and data.strip():
            self.hidden_text = True
        self.parts.append(data)

    def handle_comment(self, data: str) -> None:
        self.parts.append(f" {data} ")


def _markup_text(raw: str) -> tuple[str, bool]:
    """Text of possibly-HTML `raw` (comments kept) and whether HTML styling hides some of it."""
    if "<" not in raw and "&" not in raw:
        return raw, False
    parser = _Markup()
    try:
        parser.feed(raw)
        parser.close()
    except (AssertionError, ValueError):  # HTMLParser gives up on some broken markup: read the raw text
        return html.unescape(raw), False
    return html.unescape("".join(parser.parts)), parser.hidden_text


def normalise(text: str) -> str:
    """NFKC, invisible and bidi characters removed, look-alike letters mapped to Latin, casefolded, quotes and dashes
    made ASCII, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = text.casefold().translate(_CONFUSABLES).translate(_QUOTES)
    return _SPACES.sub(" ", text).strip()


def _hidden_characters(raw: str) -> list[str]:
    reasons = []
    if _HIDDEN_IN_WORD.search(raw):
        reasons.append("hidden text (zero-width characters inside words)")
    if any(ch in raw for ch in _BIDI):
        reasons.append("hidden text (bidirectional control characters)")
    if _TAG_CHARS.search(raw):
        reasons.append("hidden text (invisible tag characters)")
    return reasons


def _reported(text: str, start: int, end: int) -> bool:
    """Whether the order at text[start:end] is attributed to someone ("..., says analyst"; "RBS tells clients:")."""
    return bool(_ATTRIBUTION.search(text, end, end + 40) or _ATTRIBUTED_BEFORE.search(text[max(0, start - 30) : start]))


def _quote(match: str) -> str:
    return match.lstrip(" .!?;:,|>])\"'*#-").rstrip(" ,")[:QUOTE_MAX]


def phrase_reasons(text: str) -> list[str]:
    """The reader-addressed phrases of normalised `text`, as reasons quoting the phrase."""
    reasons: list[str] = []
    seen: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if kind == _ORDER and _reported(text, m.start(), m.end()):
                continue
            if not any(m.start() < end and start < m.end() for start, end in seen):  # one reason per phrase
                seen.append(m.span())
                quote = "markdown image" if kind == _IMAGE else _quote(m.group(0))
                reasons.append(f"{kind} ('{quote}')")
            break
    return reasons


def detect(title: str, summary: str = "") -> InjectionVerdict:
    """Whether a story's title or summary (as delivered, markup and all) addresses the reader, and why."""
    reasons: list[str] = []
    texts = []
    for raw in (title or "", summary or ""):
        raw = raw[:RAW_MAX_CHARS]
        reasons += _hidden_characters(raw)
        text, hidden = _markup_text(raw)
        if hidden:
            reasons.append("hidden text (HTML styled invisible)")
        texts.append(normalise(text))
        if tag := _RAW_TAGS.search(normalise(raw)):
            reasons.append(f"{_ROLE} ('{tag.group(0)}')")
    # each field is its own clause: "|" starts one, so an order opening the summary counts as an opening
    reasons += phrase_reasons(" | ".join(texts))
    unique = list(dict.fromkeys(reasons))
    return InjectionVerdict(flagged=bool(unique), reasons=unique)
