"""A local fake of the Slack Web API, and Slack's side of interactivity.

A real HTTP server on ``127.0.0.1`` (ephemeral port, background thread) answers the Web API
methods Tether calls — ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
``views.open``, ``auth.test`` — with Slack's response shapes and error codes: the bearer token is
checked (``not_authed`` / ``invalid_auth``), channels are answered by id, ``chat.update`` needs a
message that exists, blocks and views are held to Slack's documented limits (``invalid_blocks``),
and trigger ids expire after 3 s and work once. It also serves ``response_url`` endpoints.

Every call is recorded for assertions. ``block_action`` and ``view_submission`` build the
interaction payloads Slack would send for a click on a posted message or a submitted modal, and
``signed_headers`` signs a body with Slack's real v0 algorithm.

Example:
    with FakeSlack() as slack:
        settings = Settings(slack_bot_token=slack.bot_token, slack_api_url=slack.api_url, ...)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "FakeSlack",
    "PostedMessage",
    "ResponseUrlPost",
    "SlackCall",
    "block_problems",
    "interaction_body",
    "signed_headers",
    "slack_signature",
    "view_problems",
]

JsonObject = dict[str, Any]

TEAM_ID = "T0TETHER"
APP_ID = "A0TETHER"
BOT_ID = "B0TETHER"
BOT_USER_ID = "U0TETHERBOT"
TRIGGER_TTL_S = 3.0
"""Slack's documented lifetime of a trigger id."""
RESPONSE_URL_USES = 5
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")


# --- signing (Slack's real algorithm) ---------------------------------------------------------


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` keyed by the signing secret."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with an interaction request signed with ``secret``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(secret, stamp, body),
    }


def interaction_body(payload: JsonObject) -> bytes:
    """The form body Slack posts to an interactivity URL: ``payload=<url-encoded JSON>``."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


# --- what the fake records --------------------------------------------------------------------


@dataclass(frozen=True)
class SlackCall:
    """One Web API request as the fake received it."""

    method: str
    args: JsonObject
    """JSON body or form fields (JSON-valued form fields such as ``blocks`` decoded)."""
    content_type: str
    ok: bool
    error: str | None = None
    response: JsonObject = field(default_factory=dict)
    """What the fake answered (``{"ok": true, ...}`` or the error body)."""


@dataclass
class PostedMessage:
    channel: str
    """The channel id Slack answered with."""
    ts: str
    text: str
    blocks: list[JsonObject]
    thread_ts: str | None = None
    updates: int = 0

    def as_slack(self) -> JsonObject:
        message: JsonObject = {
            "type": "message", "subtype": "bot_message", "text": self.text, "ts": self.ts,
            "username": "Tether", "bot_id": BOT_ID, "app_id": APP_ID, "blocks": self.blocks,
        }  # fmt: skip
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        return message

    def action_ids(self) -> list[str]:
        return [
            element.get("action_id", "")
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]


@dataclass(frozen=True)
class ResponseUrlPost:
    url: str
    body: JsonObject


@dataclass
class _Trigger:
    issued_at: float
    used: bool = False


@dataclass
class _ResponseUrl:
    uses: int = 0
    posts: list[JsonObject] = field(default_factory=list)


class _SlackError(Exception):
    def __init__(self, error: str, *, status: int = 200, detail: list[str] | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.detail = error, status, detail or []


class FakeSlack:
    """The fake Slack; usable as a context manager or from a pytest fixture.

    Args:
        bot_token: The only token the Web API accepts.
    """

    def __init__(self, *, bot_token: str = "xoxb-0000-tether-test-bot") -> None:
        self.bot_token = bot_token
        self._lock = threading.Lock()
        self._calls: list[SlackCall] = []
        self._messages: dict[tuple[str, str], PostedMessage] = {}
        self._channels: dict[str, str] = {}
        self._views: dict[str, JsonObject] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._failures: dict[str, list[tuple[str, int]]] = {}
        self._ts = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port = 0
        self._app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["POST", "GET"]),
                Route("/actions/{team}/{key}", self._response_url, methods=["POST"]),
            ]
        )

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeSlack:
        """Start serving; returns once the port accepts connections."""
        if self._server is not None:
            raise RuntimeError("FakeSlack is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._socket, self._port = sock, sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_config=None, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-slack", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("FakeSlack did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> FakeSlack:
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
        if not self._port:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` (slack-sdk's ``base_url``) should be."""
        return f"{self.url}/api/"

    # --- inspection ----------------------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def message(self, channel: str, ts: str) -> PostedMessage:
        """A posted message as it is now (after any updates)."""
        with self._lock:
            return self._messages[(self.channel_id(channel), ts)]

    def channel_id(self, channel: str) -> str:
        """The id the fake answers for a channel name (ids are returned unchanged)."""
        if _CHANNEL_ID.match(channel):
            return channel
        name = channel.lstrip("#")
        return "C" + hashlib.sha256(name.encode()).hexdigest()[:10].upper()

    def response_posts(self) -> list[ResponseUrlPost]:
        with self._lock:
            return [
                ResponseUrlPost(url=f"{self.url}/actions/{TEAM_ID}/{key}", body=body)
                for key, entry in self._response_urls.items()
                for body in entry.posts
            ]

    def view(self, view_id: str) -> JsonObject:
        with self._lock:
            return self._views[view_id]

    def fail_next(self, method: str, error: str, *, status: int = 200, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail with Slack's ``error`` code."""
        with self._lock:
            self._failures.setdefault(method, []).extend([(error, status)] * times)

    async def wait_for(
        self, method: str, count: int = 1, within_s: float = 15.0
    ) -> list[SlackCall]:
        """Wait until ``method`` was called successfully ``count`` times; return those calls."""
        deadline = time.monotonic() + within_s
        while True:
            done = [call for call in self.calls_to(method) if call.ok]
            if len(done) >= count:
                return done
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} called {len(done)} times, expected {count}")
            await asyncio.sleep(0.05)

    async def wait_for_response_posts(
        self, count: int = 1, within_s: float = 15.0
    ) -> list[ResponseUrlPost]:
        """Wait until ``count`` messages were posted to response_urls; return them."""
        deadline = time.monotonic() + within_s
        while len(posts := self.response_posts()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(posts)} response_url posts, expected {count}")
            await asyncio.sleep(0.05)
        return posts

    # --- Slack's side of interactivity ---------------------------------------------------

    def new_trigger_id(self) -> str:
        trigger = f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**9)}.{secrets.token_hex(10)}"
        with self._lock:
            self._triggers[trigger] = _Trigger(issued_at=time.monotonic())
        return trigger

    def new_response_url(self) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._response_urls[key] = _ResponseUrl()
        return f"{self.url}/actions/{TEAM_ID}/{key}"

    def block_action(self, channel: str, ts: str, action_id: str, user_id: str) -> JsonObject:
        """The ``block_actions`` payload Slack sends when ``user_id`` clicks a button."""
        message = self.message(channel, ts)
        for block in message.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    action = {
                        **element, "block_id": block.get("block_id", "actions"),
                        "action_ts": f"{time.time():.6f}",
                    }  # fmt: skip
                    break
            else:
                continue
            break
        else:
            raise AssertionError(f"message {ts} has no {action_id} button: {message.action_ids()}")
        return {
            "type": "block_actions",
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": self.new_trigger_id(),
            "team": {"id": TEAM_ID, "domain": "tether-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": "tether-reviews"},
            "message": message.as_slack(),
            "state": {"values": {}},
            "response_url": self.new_response_url(),
            "actions": [action],
        }

    def view_submission(
        self, view_id: str, user_id: str, values: JsonObject | None = None
    ) -> JsonObject:
        """The ``view_submission`` payload for an opened modal.

        Args:
            view_id: The id ``views.open`` answered with.
            user_id: Who submits.
            values: By block id, what the user changed: text for a text input, the option value
                for a select, a bool for a single checkbox. Other inputs keep their initial value.
        """
        view = self.view(view_id)
        changed = values or {}
        state: JsonObject = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            element = block["element"]
            block_id = block["block_id"]
            given = changed.get(block_id, _UNCHANGED)
            state[block_id] = {element["action_id"]: _element_state(element, given)}
        unknown = set(changed) - set(state)
        if unknown:
            raise AssertionError(f"the modal has no input blocks {sorted(unknown)}")
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "tether-test"},
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": "deprecated-verification-token",
            "trigger_id": self.new_trigger_id(),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # --- the Web API ---------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        raw = await request.body()
        args = _decode_args(content_type, raw, dict(request.query_params))
        token = _bearer(request.headers.get("authorization")) or args.pop("token", None)
        try:
            if not token:
                raise _SlackError("not_authed")
            if not hmac.compare_digest(str(token), self.bot_token):
                raise _SlackError("invalid_auth")
            with self._lock:
                scripted = self._failures.get(method)
                if scripted:
                    error, status = scripted.pop(0)
                    raise _SlackError(error, status=status)
            handler = _METHODS.get(method)
            if handler is None:
                raise _SlackError("unknown_method", status=404)
            answer = handler(self, args)
        except _SlackError as err:
            body: JsonObject = {"ok": False, "error": err.error}
            if err.detail:
                body["errors"] = err.detail
                body["response_metadata"] = {"messages": [f"[ERROR] {d}" for d in err.detail]}
            self._record(SlackCall(method, args, content_type, False, err.error, body))
            headers = {"Retry-After": "1"} if err.status == 429 else None
            return JSONResponse(body, status_code=err.status, headers=headers)
        body = {"ok": True, **answer}
        self._record(SlackCall(method, args, content_type, True, None, body))
        return JSONResponse(body)

    def _record(self, call: SlackCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _post_message(self, args: JsonObject) -> JsonObject:
        channel = self._channel(args, create=True)
        text, blocks = _message_content(args, "chat.postMessage")
        ts = self._next_ts()
        message = PostedMessage(channel, ts, text, blocks, thread_ts=args.get("thread_ts"))
        with self._lock:
            self._messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": message.as_slack()}

    def _update(self, args: JsonObject) -> JsonObject:
        channel = self._channel(args, create=False)
        ts = str(args.get("ts") or "")
        text, blocks = _message_content(args, "chat.update")
        with self._lock:
            message = self._messages.get((channel, ts))
            if message is None:
                raise _SlackError("message_not_found")
            message.text, message.blocks = text, blocks
            message.updates += 1
            answer = message.as_slack()
        return {"channel": channel, "ts": ts, "text": text, "message": answer}

    def _post_ephemeral(self, args: JsonObject) -> JsonObject:
        self._channel(args, create=False)
        if not args.get("user"):
            raise _SlackError("user_not_found")
        _message_content(args, "chat.postEphemeral")
        return {"message_ts": self._next_ts()}

    def _views_open(self, args: JsonObject) -> JsonObject:
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise _SlackError("invalid_arguments", detail=["missing required field: trigger_id"])
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict):
            raise _SlackError("invalid_arguments", detail=["missing required field: view"])
        with self._lock:
            trigger = self._triggers.get(str(trigger_id))
            if trigger is None:
                raise _SlackError("invalid_trigger_id")
            if trigger.used:
                raise _SlackError("exchanged_trigger_id")
            if time.monotonic() - trigger.issued_at > TRIGGER_TTL_S:
                raise _SlackError("expired_trigger_id")
        problems = view_problems(view)
        if problems:
            raise _SlackError("invalid_arguments", detail=problems)
        view_id = "V" + secrets.token_hex(5).upper()
        opened = {
            **view, "id": view_id, "team_id": TEAM_ID, "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}", "previous_view_id": None,
            "root_view_id": view_id, "app_id": APP_ID, "external_id": "", "bot_id": BOT_ID,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
        }  # fmt: skip
        with self._lock:
            trigger.used = True
            self._views[view_id] = opened
        return {"view": opened}

    def _auth_test(self, args: JsonObject) -> JsonObject:
        return {
            "url": "https://tether-test.slack.com/", "team": "Tether Test", "user": "tether",
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }  # fmt: skip

    def _channel(self, args: JsonObject, *, create: bool) -> str:
        channel = str(args.get("channel") or "")
        if not channel:
            raise _SlackError("channel_not_found")
        with self._lock:
            if _CHANNEL_ID.match(channel):
                if channel not in self._channels.values():
                    raise _SlackError("channel_not_found")
                return channel
            if not create and channel not in self._channels:
                # chat.update and chat.postEphemeral take the channel id (as Slack answered it).
                raise _SlackError("channel_not_found")
            return self._channels.setdefault(channel, self.channel_id(channel))

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    async def _response_url(self, request: Request) -> Response:
        key = request.path_params["key"]
        try:
            body = json.loads(await request.body())
        except ValueError:
            return Response("invalid_payload", status_code=400)
        with self._lock:
            entry = self._response_urls.get(key)
            if entry is None or entry.uses >= RESPONSE_URL_USES:
                return Response("expired_url", status_code=404)
            entry.uses += 1
            entry.posts.append(body)
        return JSONResponse({"ok": True})


_METHODS = {
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "chat.postEphemeral": FakeSlack._post_ephemeral,
    "views.open": FakeSlack._views_open,
    "auth.test": FakeSlack._auth_test,
}


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _decode_args(content_type: str, raw: bytes, query: dict[str, str]) -> JsonObject:
    args: JsonObject = dict(query)
    if content_type == "application/json" and raw:
        try:
            body = json.loads(raw)
        except ValueError:
            raise _SlackError("invalid_json") from None
        if isinstance(body, dict):
            args.update(body)
    elif raw:
        args.update(parse_qsl(raw.decode(), keep_blank_values=True))
        for key in ("blocks", "view", "attachments"):  # form callers send these as JSON strings
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    raise _SlackError("invalid_blocks_format") from None
    return args


def _message_content(args: JsonObject, method: str) -> tuple[str, list[JsonObject]]:
    text = args.get("text") or ""
    blocks = args.get("blocks") or []
    if not text and not blocks:
        raise _SlackError("no_text")
    if len(text) > 40_000:
        raise _SlackError("msg_too_long")
    problems = block_problems(blocks, limit=50, inputs=False)
    if problems:
        raise _SlackError("invalid_blocks", detail=problems)
    return str(text), list(blocks)


# --- Slack's Block Kit limits -----------------------------------------------------------------

_MESSAGE_BLOCKS = {"section", "divider", "image", "actions", "context", "header", "rich_text",
                   "file", "video", "markdown"}  # fmt: skip
_INTERACTIVE = {"button", "static_select", "checkboxes", "plain_text_input", "overflow",
                "datepicker", "radio_buttons", "number_input", "multi_static_select"}  # fmt: skip


def view_problems(view: JsonObject) -> list[str]:
    """What Slack would reject in a modal view (empty when ``views.open`` would accept it)."""
    problems = []
    if view.get("type") != "modal":
        problems.append("view.type must be modal")
    for key in ("title", "submit", "close"):
        text = view.get(key)
        if key == "title" or text is not None:
            problems += _text_problems(text, f"view.{key}", 24, plain=True)
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("view.private_metadata must be at most 3000 characters")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("view.callback_id must be at most 255 characters")
    blocks = view.get("blocks") or []
    problems += block_problems(blocks, limit=100, inputs=True)
    if any(b.get("type") == "input" for b in blocks) and view.get("submit") is None:
        problems.append("view.submit is required when the view has input blocks")
    return problems


def block_problems(blocks: Any, *, limit: int = 50, inputs: bool = False) -> list[str]:
    """What Slack would reject in a message's blocks (``invalid_blocks`` errors)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    allowed = _MESSAGE_BLOCKS | ({"input"} if inputs else set())
    for index, block in enumerate(blocks):
        where = f"/blocks/{index}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in allowed:
            problems.append(f"unsupported type: {kind} [json-pointer:{where}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255 or block_id in block_ids:
                problems.append(f"invalid or duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(str(block_id))
        if kind == "header":
            problems += _text_problems(block.get("text"), f"{where}/text", 150, plain=True)
        elif kind == "section":
            if block.get("text") is None and not block.get("fields"):
                problems.append(f"must provide text or fields [json-pointer:{where}]")
            if block.get("text") is not None:
                problems += _text_problems(block["text"], f"{where}/text", 3000)
            fields = block.get("fields") or []
            if len(fields) > 10:
                problems.append(f"no more than 10 items allowed [json-pointer:{where}/fields]")
            for n, text in enumerate(fields):
                problems += _text_problems(text, f"{where}/fields/{n}", 2000)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                problems.append(f"must have 1 to 10 elements [json-pointer:{where}/elements]")
            for n, text in enumerate(elements):
                if text.get("type") != "image":
                    problems += _text_problems(text, f"{where}/elements/{n}", 3000)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                problems.append(f"must have 1 to 25 elements [json-pointer:{where}/elements]")
            action_ids: set[str] = set()  # unique within their block, as Slack requires
            for n, element in enumerate(elements):
                problems += _element_problems(element, f"{where}/elements/{n}", action_ids)
        elif kind == "input":
            problems += _text_problems(block.get("label"), f"{where}/label", 2000, plain=True)
            if block.get("hint") is not None:
                problems += _text_problems(block["hint"], f"{where}/hint", 2000, plain=True)
            problems += _element_problems(block.get("element"), f"{where}/element", set())
    return problems


def _element_problems(element: Any, where: str, action_ids: set[str]) -> list[str]:
    if not isinstance(element, dict) or element.get("type") not in _INTERACTIVE:
        return [f"unsupported element [json-pointer:{where}]"]
    problems: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or len(action_id) > 255 or action_id in action_ids:
            problems.append(f"invalid or duplicate action_id [json-pointer:{where}/action_id]")
        action_ids.add(str(action_id))
    kind = element["type"]
    if element.get("placeholder") is not None:
        problems += _text_problems(element["placeholder"], f"{where}/placeholder", 150, plain=True)
    if kind == "button":
        problems += _text_problems(element.get("text"), f"{where}/text", 75, plain=True)
        if len(str(element.get("value", ""))) > 2000:
            problems.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"must be primary or danger [json-pointer:{where}/style]")
    elif kind == "plain_text_input":
        max_length = element.get("max_length")
        initial = element.get("initial_value")
        if max_length is not None and not 1 <= max_length <= 3000:
            problems.append(f"max_length must be 1..3000 [json-pointer:{where}/max_length]")
        if initial is not None and len(initial) > (max_length or 3000):
            problems.append(
                f"initial_value longer than max_length [json-pointer:{where}/initial_value]"
            )
        min_length = element.get("min_length")
        if min_length is not None and not 0 <= min_length <= 3000:
            problems.append(f"min_length must be 0..3000 [json-pointer:{where}/min_length]")
    elif kind in ("static_select", "checkboxes"):
        options = element.get("options") or []
        most = 100 if kind == "static_select" else 10
        if not 1 <= len(options) <= most:
            problems.append(f"must have 1 to {most} options [json-pointer:{where}/options]")
        for n, option in enumerate(options):
            problems += _text_problems(option.get("text"), f"{where}/options/{n}/text", 75)
            if option.get("description") is not None:
                problems += _text_problems(
                    option["description"], f"{where}/options/{n}/description", 75
                )
            if not 1 <= len(str(option.get("value", ""))) <= 150:
                problems.append(
                    f"value must be 1..150 characters [json-pointer:{where}/options/{n}]"
                )
        initial = [element["initial_option"]] if "initial_option" in element else []
        initial += element.get("initial_options") or []
        for option in initial:
            if option not in options:
                problems.append(f"initial option is not one of the options [json-pointer:{where}]")
    return problems


def _text_problems(text: Any, where: str, limit: int, *, plain: bool = False) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
        return [f"must be a text object [json-pointer:{where}]"]
    if plain and text["type"] != "plain_text":
        return [f"must be plain_text [json-pointer:{where}/type]"]
    body = text.get("text")
    if not isinstance(body, str) or not body:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(body) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


# --- interaction payload details --------------------------------------------------------------

_UNCHANGED = object()


def _user(user_id: str) -> JsonObject:
    name = user_id.lower().removeprefix("u0")
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def _element_state(element: JsonObject, given: Any) -> JsonObject:
    kind = element["type"]
    if kind == "plain_text_input":
        value = element.get("initial_value") if given is _UNCHANGED else given
        return {"type": kind, "value": value or None}  # Slack sends null for an empty box
    if kind == "static_select":
        if given is _UNCHANGED:
            return {"type": kind, "selected_option": element.get("initial_option")}
        matches = [o for o in element["options"] if o["value"] == given]
        if given is not None and not matches:
            raise AssertionError(f"{given!r} is not an option of this select")
        return {"type": kind, "selected_option": matches[0] if matches else None}
    if kind == "checkboxes":
        if given is _UNCHANGED:
            return {"type": kind, "selected_options": element.get("initial_options", [])}
        return {"type": kind, "selected_options": element["options"][:1] if given else []}
    raise AssertionError(f"the fake cannot fill a {kind}")
