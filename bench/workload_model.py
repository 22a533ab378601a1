"""Stand-in models for the workload benchmark, served by the fake OpenAI-compatible server.

No hosted model is reachable from these machines, so the benchmark's two models are simulated
behind the real HTTP path (``tests.fakes.provider_server``): the engine routes, caches, charges
and reviews exactly as it would against a provider. What is simulated is how good each model is:

- ``bench-strong`` answers a ticket right 97 % of the time, 94 % on complex tickets.
- ``bench-cheap`` is as good on plain tickets (96 %) and much worse on complex ones (70 %):
  pasted logs or code, other languages, three questions or more at once. That gap is what
  routing must exploit.
- A wrong answer is usually (60 %) less sure of itself (lower token logprobs) and the engine's
  judge (the strong model) scores it lower, so the confidence gate catches some of them.
- Latency: strong ~700 ms, cheap ~250 ms per call (±30 %), slept inside the fake server.

Right or wrong is drawn from a hash of the ticket text, the model and the step, so the same
question gets the same answer from the same model, as a model at temperature 0 would.
Every figure above is an assumption of the benchmark, stated in the README beside the results.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from bench.workload_tickets import FAMILIES, Family, subject_index
from tests.fakes.provider_server import ScriptedReply

__all__ = ["StandInModels", "grade_result"]

STRONG, CHEAP = "bench-strong", "bench-cheap"
_ACCURACY = {  # (model, complex) -> probability of a right answer
    (STRONG, False): 0.97,
    (STRONG, True): 0.94,
    (CHEAP, False): 0.96,
    (CHEAP, True): 0.70,
}
_LATENCY_S = {STRONG: 0.7, CHEAP: 0.25}
_CATEGORIES = ("billing", "technical", "account", "feature_request", "other")
_PRIORITIES = ("low", "normal", "high", "urgent")
_ORDER = re.compile(r"\bA-\d{5}\b")
_FENCED = re.compile(r"<<<BEGIN ([^>]+)>>>\n(.*?)\n<<<END \1>>>", re.S)
_SUBJECT = re.compile(r"Subject: (?:<<<BEGIN [^>]+>>>\n)?(.+)")  # fenced as untrusted input
_FIX = {  # what a right reply says, per family
    "double_charge": "refund the duplicate charge",
    "refund_status": "refund is on its way",
    "invoice_mismatch": "corrected invoice",
    "cancel_subscription": "subscription is cancelled",
    "password_reset": "new reset link",
    "locked_account": "account is unlocked",
    "app_crash": "fix for the crash",
    "sync_broken": "sync is restored",
    "export_csv": "CSV export",
    "dark_mode": "dark mode",
    "shipping_delay": "parcel is on its way",
    "opening_hours": "opening hours",
}


def _draw(*parts: str) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_complex(text: str) -> bool:
    """What makes a ticket hard for the cheap model: pasted logs or code, another language,
    several questions at once."""
    return "```" in text or bool(re.search(r"[äöüßéèçñ¿]", text)) or text.count("?") >= 3


class StandInModels:
    """The ``responder`` of a ``FakeProviderServer``: answers by request kind and model."""

    def __init__(self, latency_scale: float = 1.0) -> None:
        self.latency_scale = latency_scale
        self._families = subject_index()

    def __call__(self, body: Any) -> ScriptedReply | None:
        if not isinstance(body, dict) or "messages" not in body:
            return None
        model = str(body.get("model", STRONG))
        system = " ".join(
            str(m.get("content", "")) for m in body["messages"] if m.get("role") == "system"
        )
        user = "\n".join(
            str(m.get("content", "")) for m in body["messages"] if m.get("role") == "user"
        )
        family = self._family(user)
        if family is None:
            return None
        if "You grade answers" in system:
            answer: dict[str, Any] = _judge_answer(family, user)
            right = True
        else:
            right = _draw(user, model, system) < _ACCURACY[(model, is_complex(user))]
            if "You triage" in system:
                answer = _classification(family, right, user)
            elif "You extract" in system:
                answer = _facts(family, right, user)
            elif "support agent" in system:
                answer = _reply(family, right, user)
            else:
                return None
        # A wrong answer is usually less sure of itself (60 %): lower token logprobs.
        unsure = not right and _draw(user, model, "unsure") < 0.6
        content = json.dumps(answer)
        count = max(1, math.ceil(len(content) / 4))
        logprob = -0.9 if unsure else -0.03
        jitter = 0.7 + 0.6 * _draw(user, model, system, "latency")
        delay = _LATENCY_S.get(model, 0.5) * jitter * self.latency_scale
        return ScriptedReply(answer=answer, logprobs=(logprob,) * count, delay_s=delay)

    def _family(self, text: str) -> Family | None:
        match = _SUBJECT.search(text)
        return self._families.get(match.group(1).strip()) if match else None


def _wrong(options: tuple[str, ...], right: str, seed: str) -> str:
    others = [o for o in options if o != right]
    return others[int(_draw(seed, "wrong") * len(others))]


def _classification(family: Family, right: bool, text: str) -> dict[str, Any]:
    category = family.category if right else _wrong(_CATEGORIES, family.category, text)
    priority = family.priority if right else _wrong(_PRIORITIES, family.priority, text)
    return {"category": category, "priority": priority, "rationale": f"About {family.name}."}


def _facts(family: Family, right: bool, text: str) -> dict[str, Any]:
    orders = _ORDER.findall(text)
    order = orders[0] if orders and right else None
    return {
        "order_id": order,
        "product": None,
        "sentiment": "negative" if family.priority in ("high", "urgent") else "neutral",
        "customer_asks": [family.name.replace("_", " ")],
    }


def _reply(family: Family, right: bool, text: str) -> dict[str, Any]:
    orders = _ORDER.findall(text)
    about = f" about {orders[0]}" if orders and right else ""
    fix = _FIX[family.name] if right else "look into this"
    return {
        "reply": f"Thank you for writing{about}. We will make sure the {fix} is taken care of "
        "today and keep you posted by email.",
        "needs_followup": not right,
    }


def _judge_answer(family: Family, text: str) -> dict[str, Any]:
    """The engine's judge (the strong model) grading one step's answer: usually, not always,
    right about whether the answer is right."""
    task, _, answer_text = text.partition("Answer:\n")
    fenced = _FENCED.search(answer_text)  # the engine fences what its judge grades
    try:
        answer = json.loads(fenced.group(2) if fenced else answer_text)
    except json.JSONDecodeError:
        return {"score": 0.0, "reason": "not JSON"}
    good = _step_is_right(family, task, answer)
    noise = _draw(text, "judge")
    score = 0.75 + 0.2 * noise if good else 0.2 + 0.4 * noise
    return {"score": round(score, 3), "reason": "graded"}


def _step_is_right(family: Family, task: str, answer: dict[str, Any]) -> bool:
    orders = _ORDER.findall(task)
    if "category" in answer:
        return bool(
            answer.get("category") == family.category and answer.get("priority") == family.priority
        )
    if "order_id" in answer:
        return answer.get("order_id") == (orders[0] if orders else None)
    if "reply" in answer:
        return _reply_is_right(family, str(answer.get("reply", "")), orders[0] if orders else None)
    return False


def _reply_is_right(family: Family, reply: str, order: str | None) -> bool:
    return _FIX[family.name] in reply and (order is None or order in reply)


def grade_result(family_name: str, order: str | None, result: dict[str, Any]) -> dict[str, float]:
    """The bench's judge on a run's final result, against the generator's truth: category and
    priority, the extracted order id, and a reply that names the fix and the order. 0..1 each."""
    family = next(f for f in FAMILIES if f.name == family_name)
    facts = result.get("facts") or {}
    reply = str(result.get("reply") or "")
    return {
        "category": float(result.get("category") == family.category),
        "priority": float(result.get("priority") == family.priority),
        "facts": float(facts.get("order_id") == order),
        "reply": float(_reply_is_right(family, reply, order)),
    }
