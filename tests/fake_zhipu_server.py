"""A local HTTP server on 127.0.0.1 speaking Zhipu's chat-completions protocol (POST .../chat/completions with the
SDK's JSON body; the OpenAI-like envelope; Zhipu's `{"error": {"code", "message"}}` body), for tests of the GLM
scorer. It classifies the texts it receives by keywords, so a reply depends on its request; `behaviour` (or a
per-request `script`) switches it to fenced, malformed, short, out-of-range or truncated replies, or to HTTP errors;
`delay_s` holds every answer back (released at once by `stop`). Requests are recorded with headers and bodies. It
stops by itself after `lifetime_s`.

A request with `tools` (function calling, as `trading-mcp ask` sends) is answered with one tool call: the function
name and arguments of `tool_choice` (arguments given as a string are sent verbatim, so they can be malformed);
the behaviours `text_reply` and `two_calls` answer with prose or with two calls, `truncated` cuts the reply."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from shared.net.local_http import LocalHttpServer

BULLISH = ("surge", "rally", "soar", "record high", "approved", "beats", "bullish")
BEARISH = ("crash", "plunge", "hack", "lawsuit", "ban ", "default", "bearish")
ERRORS = {
    400: ("1211", "Model does not exist, please check the model code"),
    401: ("1000", "Authentication failed"),
    429: ("1302", "Rate limit reached for requests"),
    500: ("500", "Internal error, try again later"),
}
BEHAVIOURS = (
    "ok", "fenced", "malformed", "wrong_count", "out_of_range", "truncated", "text_reply", "two_calls",
    *(f"http_{s}" for s in ERRORS),
)  # fmt: skip


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]


def texts_of(body: dict[str, Any]) -> list[str]:
    """The texts of a request: the JSON array that ends the user message (after a line starting with '[')."""
    content = next(m["content"] for m in body["messages"] if m["role"] == "user")
    data, _ = json.JSONDecoder().raw_decode(content, content.index("\n[") + 1)
    return [item["text"] for item in data]


def classify(i: int, text: str) -> dict[str, Any]:
    lowered = text.lower()
    if any(word in lowered for word in BULLISH):
        return {"i": i, "score": 0.8, "label": "bullish", "confidence": 0.9, "reason": "positive news"}
    if any(word in lowered for word in BEARISH):
        return {"i": i, "score": -0.8, "label": "bearish", "confidence": 0.9, "reason": "negative news"}
    return {"i": i, "score": 0.0, "label": "neutral", "confidence": 0.6, "reason": "no clear signal"}


class FakeZhipu(LocalHttpServer):
    def __init__(self, behaviour: str = "ok", *, delay_s: float = 0.0, lifetime_s: float = 60.0):
        self.behaviour = behaviour
        self.script: list[str] = []  # behaviours for the next requests, in arrival order; then `behaviour`
        self.delay_s = delay_s
        self.tool_choice: tuple[str, Any] = ("jesse_mcp__get_policy", {})  # (function name, arguments)
        self.requests: list[Recorded] = []
        self._released = threading.Event()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if fake.delay_s:
                    fake._released.wait(fake.delay_s)
                status, payload = fake.answer(self.path, body, self.headers.get("Authorization", ""))
                data = json.dumps(payload, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

        self._serve(Handler, lifetime_s, poll_interval=0.02)

        self.base_url = self.url + "/api/paas/v4/"

    def stop(self) -> None:
        self._released.set()
        super().stop()

    def batch_sizes(self) -> list[int]:
        return sorted(len(texts_of(r.body)) for r in self.requests)

    # --- the protocol -------------------------------------------------------------------------------------------
    def answer(self, path: str, body: dict[str, Any], authorization: str) -> tuple[int, object]:
        if not path.endswith("/chat/completions"):
            return 404, {"error": {"code": "404", "message": f"unknown path {path}"}}
        behaviour = self.script.pop(0) if self.script else self.behaviour
        assert behaviour in BEHAVIOURS, behaviour
        if behaviour.startswith("http_"):
            status = int(behaviour.removeprefix("http_"))
            code, message = ERRORS[status]
            # a careless server echoing the credential: the scorer must keep it out of reasons and logs anyway
            return status, {"error": {"code": code, "message": f"{message} (Authorization: {authorization})"}}
        if "tools" in body:
            return 200, self.tool_answer(body, behaviour)
        items = [classify(i, t) for i, t in enumerate(texts_of(body))]
        if behaviour == "wrong_count":
            items = items[:-1]
        if behaviour == "out_of_range":
            items[0]["score"] = 1.7
        content, finish = json.dumps(items), "stop"
        if behaviour == "fenced":
            content = f"```json\n{content}\n```"
        if behaviour == "malformed":
            content = "Sure! Here are the scores: " + content[: len(content) // 2]
        if behaviour == "truncated":
            content, finish = content[: len(content) // 2], "length"
        return 200, self.envelope(body, content, finish)

    def tool_answer(self, body: dict[str, Any], behaviour: str) -> dict[str, Any]:
        name, arguments = self.tool_choice
        if behaviour == "text_reply":
            return self.envelope(body, "Which strategy do you mean?", "stop")
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call = {"id": "call-1", "type": "function", "function": {"name": name, "arguments": raw}}
        calls = [call, {**call, "id": "call-2"}] if behaviour == "two_calls" else [call]
        reply = self.envelope(body, "", "length" if behaviour == "truncated" else "tool_calls")
        reply["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": calls}
        return reply

    def envelope(self, body: dict[str, Any], content: str, finish: str) -> dict[str, Any]:
        n = next(self._ids)
        prompt_tokens = sum(len(m["content"]) // 4 for m in body["messages"])
        return {
            "id": f"fake-{n}",
            "request_id": f"fake-request-{n}",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_tokens + len(content) // 4,
            },
        }
