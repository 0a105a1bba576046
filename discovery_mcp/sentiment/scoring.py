"""Which sentiment method answers: GLM 4.x when ZHIPUAI_API_KEY is set (falling back per batch to the offline
scorer, and saying so), the offline finance scorer otherwise. The offline model is loaded on first use, so a broken
user model file is reported by the call that needs it instead of stopping the server."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import anyio

from discovery_mcp.models import DiscoveryError, Sentiment
from discovery_mcp.news.injection import detect
from discovery_mcp.sentiment.glm import GlmScorer
from discovery_mcp.sentiment.offline import OfflineScorer
from shared.config.models import GlmConfig

Method = Literal["auto", "offline", "glm"]


EXCLUDED_METHOD = "excluded"


def excluded(reasons: list[str]) -> Sentiment:
    """The result for a text that addresses the reader: no score, and the reasons."""
    reason = "; ".join(reasons)
    return Sentiment(score=0.0, label="neutral", confidence=0.0, method=EXCLUDED_METHOD, excluded_reason=reason)


class SentimentRouter:
    def __init__(self, home: Path, glm_config: Callable[[], GlmConfig], env: Mapping[str, str] = os.environ):
        self.home = home
        self.glm_config = glm_config
        self.env = env
        self._glm: GlmScorer | None = None
        self._glm_key: tuple[str, str] | None = None

    @property
    def offline(self) -> OfflineScorer:
        return OfflineScorer.for_home(self.home)  # cached until the model file changes: a retrained model applies

    def glm(self) -> GlmScorer | None:
        """The GLM scorer for the current key and settings; rebuilt when either changes."""
        cfg = self.glm_config()
        key = (self.env.get("ZHIPUAI_API_KEY", ""), cfg.model_dump_json())
        if not key[0]:
            return None
        if self._glm is None or key != self._glm_key:
            self._glm = GlmScorer.from_env(cfg, self.offline, env=self.env)
            self._glm_key = key
        return self._glm

    @property
    def default_method(self) -> str:
        return "glm" if self.env.get("ZHIPUAI_API_KEY") else "offline"

    async def score(self, texts: list[str], method: Method = "auto") -> list[Sentiment]:
        """One Sentiment per text. A text that addresses the reader is not scored (nor sent to GLM): it gets a
        neutral, zero-confidence result that says why."""
        verdicts = [detect(t) for t in texts]
        clean = [t for t, v in zip(texts, verdicts, strict=True) if not v.flagged]
        scores = iter(await self._score(clean, method))
        return [excluded(v.reasons) if v.flagged else next(scores) for v in verdicts]

    async def _score(self, texts: list[str], method: Method) -> list[Sentiment]:
        if not texts and method != "glm":
            return []
        if method in ("auto", "glm"):
            glm = self.glm()
            if glm is not None:
                return await glm.score_many(texts)
            if method == "glm":
                raise DiscoveryError(
                    "GLM scoring needs ZHIPUAI_API_KEY in the discovery server's environment (and optionally "
                    "ZHIPUAI_BASE_URL); use method 'offline' or 'auto' meanwhile."
                )
        offline = self.offline
        return await anyio.to_thread.run_sync(offline.score_many, texts)
