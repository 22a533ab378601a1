"""A local fake of the OpenAI Chat Completions and Anthropic Messages HTTP APIs.

It speaks both wire formats on ``127.0.0.1`` (an ephemeral port) from a background thread:
auth is checked like the real APIs, bodies are validated for the fields Tether sends, and
answers have the real response shapes. By default it answers with a valid object for the
requested JSON schema; tests queue scripted behaviours (errors, rate limits, delays, fixed
answers) with ``script`` and inspect ``requests`` to count calls.

Example:
    with FakeProviderServer() as server:
        server.script(fail_with=503, times=2)
        settings = Settings(openai_base_url=server.openai_base_url, ...)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activities.providers.simulated import JsonValue, answer_for_schema, answer_text

__all__ = ["FakeProviderServer", "RecordedRequest", "ScriptedReply"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_OPENAI_ERROR_TYPES = {429: "requests", 403: "permission_denied"}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    529: "overloaded_error",
}  # fmt: skip


ScriptedAnswer = dict[str, Any] | list[Any] | str | None
"""A JSON object or list to answer with, or raw text used as the answer verbatim."""


@dataclass(frozen=True)
class ScriptedReply:
    """One queued behaviour; the next request (on either route) consumes it."""

    status: int = 200
    message: str | None = None
    answer: ScriptedAnswer = None
    raw_body: str | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    delay_s: float = 0.0
    logprobs: tuple[float, ...] | None = None


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    """Lower-cased header names."""
    json: Any
    received_at: float = dataclass_field(default_factory=time.time)
    """When the server received it (seconds since the epoch)."""


class FakeProviderServer:
    """The fake provider server; usable as a context manager or from a pytest fixture.

    Args:
        openai_api_key: The only bearer token ``/v1/chat/completions`` accepts.
        anthropic_api_key: The only ``x-api-key`` ``/v1/messages`` accepts.
        responder: Answers a request (its JSON body) when no scripted behaviour is queued: a
            stand-in model, e.g. the benchmark's; None for the default answer.
    """

    def __init__(
        self,
        *,
        openai_api_key: str = "sk-test-openai-key",
        anthropic_api_key: str = "sk-ant-test-anthropic-key",
        responder: Callable[[Any], ScriptedReply | None] | None = None,
    ) -> None:
        self.responder = responder
        self.openai_api_key = openai_api_key
        self.anthropic_api_key = anthropic_api_key
        self._lock = threading.Lock()
        self._scripts: deque[ScriptedReply] = deque()
        self._by_content: Callable[[dict[str, Any]], ScriptedAnswer] | None = None
        self._outages: dict[str, ScriptedReply] = {}
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port = 0
        self._app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
            ]
        )

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        """Start serving; returns once the port accepts connections."""
        if self._server is not None:
            raise RuntimeError("FakeProviderServer is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("FakeProviderServer did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving, ending any scripted delay at once. Safe to call twice."""
        if self._loop is not None and self._stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None
        self._stop_event, self._loop = None, None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the Anthropic base URL."""
        if not self._port:
            raise RuntimeError("FakeProviderServer is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # --- scripting -----------------------------------------------------------------------

    def script(
        self,
        *,
        status: int = 200,
        fail_with: int | None = None,
        times: int = 1,
        message: str | None = None,
        answer: ScriptedAnswer = None,
        raw_body: str | None = None,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        delay_s: float = 0.0,
        logprobs: list[float] | None = None,
    ) -> None:
        """Queue a behaviour for the next ``times`` requests that pass the auth check.

        Args:
            status: HTTP status to answer with; non-2xx answers carry the API's error body.
            fail_with: Shorthand for an error ``status``.
            times: How many consecutive requests get this behaviour.
            message: The error message in the error body.
            answer: A JSON object to answer with, or raw text used as the content verbatim.
            raw_body: A response body sent verbatim (e.g. invalid JSON).
            retry_after: ``Retry-After`` header value (seconds or an HTTP-date).
            retry_after_ms: OpenAI's ``retry-after-ms`` header value.
            delay_s: Seconds to wait before answering.
            logprobs: Per-token logprobs to return when the request asks for logprobs.
        """
        reply = ScriptedReply(
            status=fail_with if fail_with is not None else status,
            message=message,
            answer=answer,
            raw_body=raw_body,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            delay_s=delay_s,
            logprobs=tuple(logprobs) if logprobs is not None else None,
        )
        with self._lock:
            self._scripts.extend([reply] * times)

    def answer_by_content(self, answer: Callable[[dict[str, Any]], ScriptedAnswer]) -> None:
        """Answer every request no queued script claims with ``answer(request body)`` (None:
        the default answer for the schema): replies chosen by what was asked, whatever the
        order requests arrive in."""
        with self._lock:
            self._by_content = answer

    def outage(self, model: str, *, fail_with: int | None = 503, delay_s: float = 0.0) -> None:
        """Every request for ``model`` (the API's own model name, e.g. ``gpt-4o-mini``) gets
        ``fail_with`` (after ``delay_s``; ``fail_with=None`` hangs ``delay_s``, then answers)
        until :meth:`recover`, as when one model of a real API is overloaded; other models,
        and scripted replies, are not affected."""
        reply = ScriptedReply(status=fail_with if fail_with is not None else 200, delay_s=delay_s)
        with self._lock:
            self._outages[model] = reply

    def recover(self, model: str) -> None:
        """Ends :meth:`outage` for ``model``."""
        with self._lock:
            self._outages.pop(model, None)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The requests received for ``model`` (the API's own model name), oldest first."""
        return [
            r for r in self.requests if isinstance(r.json, dict) and r.json.get("model") == model
        ]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def max_in_flight(self) -> int:
        """The most requests that were being delayed (``delay_s``) at the same moment."""
        with self._lock:
            return self._max_in_flight

    def reset(self) -> None:
        """Forget recorded requests, queued scripts and the in-flight high-water mark."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self._outages.clear()
            self._max_in_flight = 0
            self._by_content = None

    # --- OpenAI --------------------------------------------------------------------------

    def _openai_auth_error(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return _openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        key = auth.removeprefix("Bearer ").strip()
        if key != self.openai_api_key:
            return _openai_error(
                401,
                f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    async def _chat_completions(self, request: Request) -> Response:
        body = await self._record(request)
        refused = self._openai_auth_error(request)
        if refused is not None:
            return refused
        scripted = await self._next_script(body)
        if scripted.status != 200 or scripted.raw_body is not None:
            return _scripted_failure(scripted, _openai_error)
        problem = _openai_problem(body)
        if problem:
            return _openai_error(400, problem)
        if scripted == ScriptedReply() and self._by_content is not None:
            scripted = ScriptedReply(answer=self._by_content(body))
        content = _answer(scripted, body, _openai_schema(body))
        finish_reason = "stop"
        if math.ceil(len(content) / 4) > body.get("max_tokens", 4096):
            content, finish_reason = content[: body["max_tokens"] * 4], "length"
        tokens = _tokens(content, scripted.logprobs)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        if body.get("logprobs"):
            choice["logprobs"] = {"content": tokens, "refusal": None}
        prompt_tokens = _count(json.dumps(body["messages"]))
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            },
        }
        return JSONResponse(payload, headers={"x-request-id": f"req_{uuid.uuid4().hex}"})

    async def _embeddings(self, request: Request) -> Response:
        """OpenAI's embeddings endpoint: ``input`` a string or a list of strings, optional
        ``dimensions`` and ``encoding_format`` (``float`` or ``base64``); a list of embedding
        objects in input order, with the prompt tokens in ``usage``. The vectors hash words and
        character trigrams, so texts sharing words are close (deterministic, not semantic)."""
        body = await self._record(request)
        refused = self._openai_auth_error(request)
        if refused is not None:
            return refused
        scripted = await self._next_script(body, chat=False)
        if scripted.status != 200 or scripted.raw_body is not None:
            return _scripted_failure(scripted, _openai_error)
        if not isinstance(body, dict):
            return _openai_error(400, "We could not parse the JSON body of your request.")
        if not body.get("model"):
            return _openai_error(400, "you must provide a model parameter")
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if (
            not isinstance(texts, list)
            or not texts
            or len(texts) > 2048
            or not all(isinstance(t, str) and t for t in texts)
        ):
            return _openai_error(400, "'$.input' is invalid. Please check the API reference.")
        dimensions = body.get("dimensions", 1536)
        encoding = body.get("encoding_format", "float")
        if not isinstance(dimensions, int) or not 1 <= dimensions <= 1536:
            return _openai_error(400, "Invalid 'dimensions': integer out of range.")
        if encoding not in ("float", "base64"):
            return _openai_error(400, f"Invalid value: '{encoding}'. Supported: 'float', 'base64'.")
        data = []
        for index, text in enumerate(texts):
            vector = _hashed_vector(text, dimensions)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
                if encoding == "base64"
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_count(text) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            headers={"x-request-id": f"req_{uuid.uuid4().hex}"},
        )

    # --- Anthropic -----------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        body = await self._record(request)
        key = request.headers.get("x-api-key")
        if not key:
            return _anthropic_error(401, "x-api-key header is required")
        if key != self.anthropic_api_key:
            return _anthropic_error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _anthropic_error(400, "anthropic-version: header is required")
        scripted = await self._next_script(body)
        if scripted.status != 200 or scripted.raw_body is not None:
            return _scripted_failure(scripted, _anthropic_error)
        problem = _anthropic_problem(body)
        if problem:
            return _anthropic_error(400, problem)
        forced = (body.get("tool_choice") or {}).get("name")
        tool = next((t for t in body.get("tools", []) if t["name"] == forced), None)
        blocks: list[dict[str, Any]]
        if tool is not None and not isinstance(scripted.answer, str):
            value = _answer_value(scripted, body, tool["input_schema"])
            tool_id = f"toolu_{uuid.uuid4().hex[:24]}"
            blocks = [{"type": "tool_use", "id": tool_id, "name": forced, "input": value}]
            stop_reason, output = "tool_use", json.dumps(value)
        else:
            output = _answer(scripted, body, None)
            stop_reason = "end_turn"
            if math.ceil(len(output) / 4) > body["max_tokens"]:
                output, stop_reason = output[: body["max_tokens"] * 4], "max_tokens"
            blocks = [{"type": "text", "text": output}]
        payload = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": _count(json.dumps([body.get("system"), body["messages"]])),
                "output_tokens": _count(output),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return JSONResponse(payload, headers={"request-id": f"req_{uuid.uuid4().hex}"})

    # --- shared --------------------------------------------------------------------------

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        with self._lock:
            self._requests.append(RecordedRequest(request.url.path, dict(request.headers), body))
        return body

    async def _next_script(self, body: Any, *, chat: bool = True) -> ScriptedReply:
        """The behaviour for a request: its model's outage, else (for chat requests only, so an
        embedding call never uses up a test's queued chat replies) the next queued script or
        the responder's reply, else the default."""
        model = body.get("model") if isinstance(body, dict) else None
        with self._lock:
            outage = self._outages.get(model) if isinstance(model, str) else None
            queued = self._scripts.popleft() if chat and outage is None and self._scripts else None
        answered = self.responder(body) if chat and self.responder else None
        scripted = outage or queued or answered or ScriptedReply()
        if scripted.delay_s > 0:
            with self._lock:
                self._in_flight += 1
                self._max_in_flight = max(self._max_in_flight, self._in_flight)
            try:
                # Wait on the stop signal rather than sleeping, so stop() never waits out a delay.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_signal().wait(), timeout=scripted.delay_s)
            finally:
                with self._lock:
                    self._in_flight -= 1
        return scripted

    def _stop_signal(self) -> asyncio.Event:
        # Created on first use, inside the server's event loop, which owns it.
        if self._stop_event is None:
            self._stop_event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        return self._stop_event


def _scripted_failure(
    scripted: ScriptedReply, error: Callable[[int, str | None], JSONResponse]
) -> Response:
    if scripted.raw_body is not None:
        return Response(scripted.raw_body, status_code=scripted.status, media_type="text/plain")
    response: Response = error(scripted.status, scripted.message)
    if scripted.retry_after is not None:
        response.headers["retry-after"] = scripted.retry_after
    if scripted.retry_after_ms is not None:
        response.headers["retry-after-ms"] = scripted.retry_after_ms
    return response


def _openai_error(status: int, message: str | None, code: str | None = None) -> JSONResponse:
    default = {
        429: "Rate limit reached for requests. Please try again later.",
        503: "The engine is currently overloaded, please try again later.",
    }.get(status, "The server had an error while processing your request. Sorry about that!")
    fallback = "server_error" if status >= 500 else "invalid_request_error"
    error_type = _OPENAI_ERROR_TYPES.get(status, fallback)
    if status == 429:
        code = code or "rate_limit_exceeded"
    error = {"message": message or default, "type": error_type, "param": None, "code": code}
    return JSONResponse({"error": error}, status_code=status)


def _anthropic_error(status: int, message: str | None) -> JSONResponse:
    error_type = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    default = "Overloaded" if status == 529 else f"{error_type.replace('_', ' ')}"
    return JSONResponse(
        {"type": "error", "error": {"type": error_type, "message": message or default}},
        status_code=status,
    )


def _openai_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    if not body.get("model"):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "[] is too short - 'messages'"
    for message in messages:
        if message.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            return f"Invalid value: '{message.get('role')}'. Supported values are: 'system', ..."
    if not 0 <= body.get("temperature", 1) <= 2:
        return "Invalid 'temperature': decimal above maximum value."
    if not isinstance(body.get("max_tokens", 1), int) or body.get("max_tokens", 1) < 1:
        return "Invalid 'max_tokens': integer below minimum value."
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        if not _NAME.match(str(spec.get("name", ""))):
            return "Invalid 'response_format.json_schema.name': string does not match pattern."
        if not isinstance(spec.get("schema"), dict):
            return "Missing required parameter: 'response_format.json_schema.schema'."
    return None


def _anthropic_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Input should be a valid dictionary"
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            return f"{field}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    if not body["messages"]:
        return "messages: at least one message is required"
    for message in body["messages"]:
        if message.get("role") not in ("user", "assistant"):
            return (
                f'messages: Unexpected role "{message.get("role")}". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.'
            )
    if not 0 <= body.get("temperature", 1) <= 1:
        return "temperature: range: 0 <= temperature <= 1"
    tools = body.get("tools", [])
    for tool in tools:
        if not _NAME.match(str(tool.get("name", ""))):
            return "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"
        if (tool.get("input_schema") or {}).get("type") != "object":
            return "tools.0.custom.input_schema.type: Field required"
    choice = body.get("tool_choice")
    if (
        choice
        and choice.get("type") == "tool"
        and choice.get("name") not in {tool.get("name") for tool in tools}
    ):
        return f"Tool '{choice.get('name')}' not found in provided tools"
    return None


def _openai_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema: dict[str, Any] = response_format["json_schema"]["schema"]
        return schema
    return None


def _answer(scripted: ScriptedReply, body: dict[str, Any], schema: dict[str, Any] | None) -> str:
    if isinstance(scripted.answer, str):
        return scripted.answer
    if scripted.answer is not None or schema is not None:
        return json.dumps(_answer_value(scripted, body, schema))
    return answer_text(_user_text(body), _rng(body))


def _answer_value(
    scripted: ScriptedReply, body: dict[str, Any], schema: dict[str, Any] | None
) -> JsonValue:
    if scripted.answer is not None:
        return scripted.answer
    return answer_for_schema(schema or {"type": "object"}, _user_text(body), _rng(body))


def _tokens(content: str, logprobs: tuple[float, ...] | None) -> list[dict[str, Any]]:
    count = len(logprobs) if logprobs else max(1, math.ceil(len(content) / 4))
    size = max(1, math.ceil(len(content) / count))
    pieces = [content[i * size : (i + 1) * size] for i in range(count)]
    rng = random.Random(content)
    values = logprobs or tuple(-rng.uniform(0.001, 0.4) for _ in pieces)
    return [
        {"token": piece, "logprob": value, "bytes": list(piece.encode()), "top_logprobs": []}
        for piece, value in zip(pieces, values, strict=True)
    ]


def _user_text(body: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user"
    )


def _rng(body: dict[str, Any]) -> random.Random:
    return random.Random(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest())


def _count(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _hashed_vector(text: str, dimensions: int) -> list[float]:
    words = re.findall(r"\w+", text.lower())
    features = words + [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
    vector = [0.0] * dimensions
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _masked(key: str) -> str:
    # The real API echoes a masked key: enough to recognise it, not to use it.
    return key[:3] + "*" * max(4, len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)
