"""The Slack building blocks without servers: request signatures, the review message, and the Edit
modal generated from an output schema (held to Slack's limits by the fake's validator)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from activities.slack_message import outcome_blocks, parse_button_value, review_blocks, review_url
from review_ui.slack_modals import edit_modal, parse_edit_submission
from review_ui.slack_verification import signature_problem
from tests.fakes.slack_api import block_problems, signed_headers, view_problems
from tether.store.reviews import ReviewItem
from workflows.support_triage_steps import DraftReply, TicketFacts

SECRET = "a-signing-secret"
PUBLIC_URL = "https://tether.example.test/"


def review(**fields: Any) -> ReviewItem:
    values: dict[str, Any] = {
        "review_id": "triage-1:extract:1",
        "run_id": "triage-1",
        "workflow": "support_triage",
        "step": "extract",
        "tenant": "default",
        "reason": "low_confidence",
        "summary": "extract: confidence 0.41 needs review",
        "output": {"order_id": "1234", "product": None, "sentiment": "negative",
                   "customer_asks": ["refund", "apology"]},
        "output_schema": TicketFacts.model_json_schema(),
        "output_model": "workflows.support_triage:TicketFacts",
        "output_digest": "sha256:" + "ab" * 32,
        "confidence": {"score": 0.41, "reasons": ["judge: the order id may be wrong"]},
        "confidence_score": 0.41,
        "cost_usd": 0.0123,
        "allowed_roles": ["support", "lead"],
        "expires_at": datetime.now(UTC) + timedelta(days=7),
        "due_at": datetime(2030, 1, 2, 3, 4),  # naive, as SQLite hands it back
    }  # fmt: skip
    return ReviewItem(**(values | fields))


def headers_of(body: bytes, **kwargs: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in signed_headers(body, SECRET, **kwargs).items()}


# --- signatures -----------------------------------------------------------------------------


def test_a_request_signed_with_slacks_algorithm_is_accepted() -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    assert signature_problem(body, headers_of(body), SECRET) is None


def test_a_signature_over_another_body_or_secret_is_refused() -> None:
    body = b"payload=%7B%7D"
    assert (
        signature_problem(body + b"x", headers_of(body), SECRET) == "the signature does not match"
    )
    assert (
        signature_problem(body, headers_of(body), "another-secret")
        == "the signature does not match"
    )


def test_a_timestamp_outside_five_minutes_is_refused_even_when_correctly_signed() -> None:
    body = b"payload=%7B%7D"
    now = time.time()
    assert (
        signature_problem(body, headers_of(body, timestamp=int(now) - 299), SECRET, now=now) is None
    )
    for skew in (-301, 301):
        headers = headers_of(body, timestamp=int(now) + skew)
        assert "5 minutes" in (signature_problem(body, headers, SECRET, now=now) or "")


def test_missing_or_malformed_headers_are_refused() -> None:
    body = b"payload=%7B%7D"
    good = headers_of(body)
    assert "missing" in (signature_problem(body, {}, SECRET) or "")
    for bad in (
        {"x-slack-request-timestamp": "12.5"},
        {"x-slack-request-timestamp": "-1"},
        {"x-slack-signature": "v0=xyz"},
        {"x-slack-signature": good["x-slack-signature"].upper()},
    ):
        assert "malformed" in (signature_problem(body, good | bad, SECRET) or ""), bad


# --- the review message ---------------------------------------------------------------------


def test_the_message_says_what_why_confidence_cost_and_links_to_the_item() -> None:
    item = review()
    blocks = review_blocks(item, PUBLIC_URL)
    assert block_problems(blocks) == []
    text = json.dumps(blocks)
    assert "support_triage" in text and "extract" in text and "$0.0123" in text
    assert "0.41" in text and "judge: the order id may be wrong" in text
    assert review_url(PUBLIC_URL, item.review_id) in text
    assert review_url(PUBLIC_URL, item.review_id).endswith("/reviews/triage-1%3Aextract%3A1")
    assert "<!date^1893553440^" in text  # the naive due time is read as UTC
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["tether_approve", "tether_reject", "tether_edit"]
    value = parse_button_value(buttons[0]["value"])
    assert value is not None and value.review_id == item.review_id
    assert value.digest == item.output_digest


def test_model_text_cannot_ping_the_channel_or_forge_links() -> None:
    item = review(summary="<!channel> urgent <https://evil.example|click> & more")
    text = json.dumps(review_blocks(item, PUBLIC_URL))
    assert "<!channel>" not in text and "<https://evil.example" not in text
    assert "&lt;!channel&gt;" in text and "&amp; more" in text


def test_buttons_offer_only_the_decisions_the_item_allows() -> None:
    def actions(**fields: Any) -> list[str]:
        blocks = review_blocks(review(**fields), PUBLIC_URL)
        return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    assert actions(reason="over_budget", output_schema=None) == ["tether_approve", "tether_reject"]
    assert actions(reason="invalid_output") == ["tether_reject", "tether_edit"]
    assert actions(reason="provider_failure", output=None, output_schema=None) == ["tether_reject"]
    quarantined = {"score": 0.9, "rules": ["override/ignore_previous"], "variables": ["body"]}
    assert actions(reason="prompt_injection", output=quarantined, output_schema=None) == [
        "tether_approve",
        "tether_reject",
    ]


def test_the_outcome_replaces_the_buttons_with_who_decided_what_and_where() -> None:
    item = review(status="rejected", decision="reject", reviewer="bob", decided_via="web",
                  decided_at=datetime(2030, 1, 1, tzinfo=UTC), decision_reason="wrong order id")  # fmt: skip
    blocks = outcome_blocks(item, PUBLIC_URL)
    assert block_problems(blocks) == []
    assert not [b for b in blocks if b["type"] == "actions"]
    text = json.dumps(blocks)
    assert "*Rejected* by bob via the web queue" in text and "wrong order id" in text


# --- the Edit modal -------------------------------------------------------------------------


def inputs_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def test_the_edit_modal_is_generated_from_the_schema_and_prefilled() -> None:
    item = review()
    view = edit_modal(item, item.output_digest)
    assert view_problems(view) == []
    assert json.loads(view["private_metadata"]) == {
        "review_id": item.review_id, "digest": item.output_digest,
    }  # fmt: skip
    inputs = inputs_of(view)
    assert list(inputs) == ["f.order_id", "f.product", "f.sentiment", "f.customer_asks"]
    assert inputs["f.order_id"]["element"]["initial_value"] == "1234"
    assert inputs["f.order_id"]["optional"] is True  # Optional[str]: may be emptied
    assert "initial_value" not in inputs["f.product"]["element"]
    sentiment = inputs["f.sentiment"]
    assert sentiment["optional"] is False and sentiment["element"]["type"] == "static_select"
    assert [o["value"] for o in sentiment["element"]["options"]] == [
        "negative",
        "neutral",
        "positive",
    ]
    assert sentiment["element"]["initial_option"]["value"] == "negative"
    asks = inputs["f.customer_asks"]["element"]
    assert asks["multiline"] is True and asks["initial_value"] == "refund\napology"


def test_booleans_are_checkboxes_and_text_too_long_for_slack_is_kept_not_cut() -> None:
    long_reply = "Dear customer, " + "we are sorry. " * 250  # 3515 chars: valid, > 3000
    item = review(
        step="draft_reply",
        output={"reply": long_reply, "needs_followup": True},
        output_schema=DraftReply.model_json_schema(),
        output_model="workflows.support_triage:DraftReply",
    )
    view = edit_modal(item, item.output_digest)
    assert view_problems(view) == []
    inputs = inputs_of(view)
    assert list(inputs) == ["f.needs_followup"]  # the reply is shown as a note, not a cut box
    assert "too long to edit in Slack" in json.dumps(view["blocks"])
    followup = inputs["f.needs_followup"]["element"]
    assert followup["type"] == "checkboxes" and followup["initial_options"] == followup["options"]

    state = {"f.needs_followup": {"value": {"type": "checkboxes", "selected_options": []}}}
    edited, errors = parse_edit_submission(item, state)
    assert errors == {}
    assert edited == {"reply": long_reply, "needs_followup": False}


def state_of(**texts: str | None) -> dict[str, Any]:
    return {
        f"f.{name}": {"value": {"type": "plain_text_input", "value": text}}
        for name, text in texts.items()
    }


def test_a_submission_is_read_back_into_the_output() -> None:
    item = review()
    values = state_of(order_id=None, product="Kettle", customer_asks="refund\n\n  new kettle \n")
    values["f.sentiment"] = {"value": {"type": "static_select",
                                       "selected_option": {"value": "neutral"}}}  # fmt: skip
    edited, errors = parse_edit_submission(item, values)
    assert errors == {}
    assert edited == {"order_id": None, "product": "Kettle", "sentiment": "neutral",
                      "customer_asks": ["refund", "new kettle"]}  # fmt: skip


def test_invalid_values_are_reported_on_their_fields() -> None:
    item = review()
    too_many = "\n".join(f"ask {n}" for n in range(6))  # the schema allows at most 5
    _, errors = parse_edit_submission(item, state_of(customer_asks=too_many))
    assert list(errors) == ["f.customer_asks"]
    assert "5" in errors["f.customer_asks"]


class Invoice(BaseModel):
    lines: int = Field(ge=1)
    total: float
    currency: Literal["EUR", "USD"]


def test_numbers_are_text_boxes_checked_on_submit() -> None:
    item = review(
        output={"lines": 2, "total": 10.5, "currency": "EUR"},
        output_schema=Invoice.model_json_schema(),
        output_model=f"{__name__}:Invoice",
    )
    view = edit_modal(item, item.output_digest)
    assert view_problems(view) == []
    inputs = inputs_of(view)
    assert inputs["f.lines"]["element"]["type"] == "plain_text_input"
    assert inputs["f.lines"]["element"]["initial_value"] == "2"
    assert inputs["f.total"]["element"]["initial_value"] == "10.5"

    _, errors = parse_edit_submission(item, state_of(lines="two", total="ten"))
    assert set(errors) == {"f.lines", "f.total"}
    assert "whole number" in errors["f.lines"]
    edited, errors = parse_edit_submission(item, state_of(lines="3", total="12.25"))
    assert errors == {} and edited == {"lines": 3, "total": 12.25, "currency": "EUR"}
