"""Third-party text made safe to pass on, URLs made canonical, titles reduced to their identifying words.

News titles and summaries are untrusted: they may carry markup, scripts, invisible characters or text that tries
to instruct a model. Here they become plain, bounded text; they are never interpreted.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the reader; dropping them makes the same article one URL.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "mkt_tok", "yclid", "_ga", "_gl"}
    | {"ref", "ref_src", "ref_url", "referrer", "cmpid", "ocid", "sr_share", "guccounter", "guce_referrer"}
    | {"at_medium", "at_campaign", "at_custom1", "at_custom2", "spm", "share", "smid", "taid", "outputtype"}
)
TRACKING_PREFIXES = ("utm_", "utm-", "hsa_", "pk_", "mtm_", "__twitter", "ns_")

_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad]")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
# Words that carry no identity of a story; left out of the title key so rewordings still match.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "after",
        "before",
        "over",
        "under",
        "into",
        "amid",
        "says",
        "said",
        "say",
        "new",
        "news",
        "report",
        "reports",
        "update",
        "live",
        "today",
    ]
)


class _TextOnly(HTMLParser):
    """Collects text nodes; drops tags and the content of script/style (stdlib parser: no library does less)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(value: object, limit: int) -> str:
    """Markup stripped, entities decoded, control and invisible characters removed, whitespace collapsed, and cut
    to `limit` characters at a word boundary (with an ellipsis) when longer."""
    if not isinstance(value, str) or not value:
        return ""
    text = value[: limit * 20]  # markup is parsed only as far as the text can reach: a 5 MB summary costs nothing
    if "<" in text or "&" in text:
        parser = _TextOnly()
        try:
            parser.feed(text)
            parser.close()
            text = "".join(parser.parts)
        except (AssertionError, ValueError):  # HTMLParser gives up on some broken markup: keep the raw text
            pass
        text = html.unescape(text)
    text = _INVISIBLE.sub("", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        cut = text[: limit - 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-") + "…"
    return text


def canonical_url(url: object) -> str:
    """http(s) URL with lower-case scheme and host, no fragment, no tracking parameters, remaining parameters
    sorted, no default port and no trailing slash; '' for anything that is not an http(s) URL."""
    if not isinstance(url, str):
        return ""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    )
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def title_words(title: str) -> frozenset[str]:
    """The identifying words of a title: lower case, numbers kept, stop words dropped."""
    words = _WORD.findall(unicodedata.normalize("NFKC", title).lower().replace("’", "'"))
    return frozenset(_stem(w) for w in words if w not in _STOPWORDS and (len(w) > 1 or w.isdigit()))


def _stem(word: str) -> str:
    """Plural and third-person -s dropped (markets/market, hits/hit): enough for rewordings of one headline."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def similar_titles(a: frozenset[str], b: frozenset[str], threshold: float = 0.6) -> bool:
    """Near-duplicate titles: Jaccard similarity of their identifying words at or above `threshold`, or a rewrite of
    the same story (at least five shared words making up two thirds of the shorter title). Titles need four words
    or more, so that short generic ones ("Bitcoin price today") do not merge."""
    if len(a) < 4 or len(b) < 4:
        return a == b and len(a) > 0
    shared = len(a & b)
    if shared / len(a | b) >= threshold:
        return True
    numbers_a, numbers_b = _numbers(a), _numbers(b)
    if numbers_a and numbers_b and not (numbers_a <= numbers_b or numbers_b <= numbers_a):
        return False  # "$500M inflows" vs "$300M outflows": other stories; a rewrite may add a figure, not change one
    return shared >= 5 and shared / min(len(a), len(b)) >= 0.65


def _numbers(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in words if any(ch.isdigit() for ch in w))
