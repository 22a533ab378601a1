# ruff: noqa: RUF001  (tickets in other scripts are the point of these tests)
"""Routing features of a step's input, and the rules that choose its tier from them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies.guard_routing import RouteRule, RouteRulesPolicy, RouteWhen
from policies.route_features import (
    RouteFeatures,
    RouteRequest,
    detect_language,
    estimate_input_tokens,
    input_features,
)
from policies.route_rules import LearnedVerdict, choose_tier, route_tier

# --- size --------------------------------------------------------------------------------------


def test_size_in_chars_and_estimated_tokens() -> None:
    features = input_features("x" * 4001)
    assert (features.chars, features.tokens) == (4001, 1001)
    assert input_features("").tokens == 0


def test_cjk_text_counts_a_token_per_character() -> None:
    assert estimate_input_tokens("请帮我退款") == 5
    assert estimate_input_tokens("退款 refund") == 2 + 2  # 2 han + ceil(7 / 4)


# --- language ----------------------------------------------------------------------------------

TICKETS = {
    "en": "Hello, I was charged twice for my order and I would like a refund. Can you help?",
    "de": "Hallo, ich wurde für meine Bestellung zweimal belastet und möchte eine "
    "Rückerstattung. Können Sie mir helfen?",
    "fr": "Bonjour, j'ai été débité deux fois pour ma commande et je voudrais un "
    "remboursement. Pouvez-vous m'aider ?",
    "es": "Hola, me cobraron dos veces por mi pedido y quisiera un reembolso. ¿Pueden ayudarme?",
    "pt": "Olá, fui cobrado duas vezes pelo meu pedido e gostaria de um reembolso. "
    "Vocês podem me ajudar?",
    "it": "Ciao, mi hanno addebitato due volte il mio ordine e vorrei un rimborso. "
    "Potete aiutarmi?",
    "nl": "Hallo, ik ben twee keer belast voor mijn bestelling en ik wil graag mijn geld "
    "terug. Kunnen jullie mij helpen?",
    "ru": "Здравствуйте, с меня дважды списали деньги за заказ. Можете помочь?",
    "uk": "Доброго дня, з мене двічі зняли гроші за замовлення. Чи можете допомогти?",
    "ja": "注文の代金が二重に請求されました。返金してください。",
    "zh": "我的订单被重复扣款了，请帮我退款。",
    "ko": "주문 금액이 두 번 청구되었습니다. 환불해 주세요.",
    "ar": "تم خصم المبلغ مرتين من بطاقتي. هل يمكنكم مساعدتي؟",
    "el": "Χρεώθηκα δύο φορές για την παραγγελία μου.",
    "he": "חויבתי פעמיים על ההזמנה שלי.",
    "hi": "मेरे ऑर्डर के लिए दो बार शुल्क लिया गया।",
    "th": "ฉันถูกเรียกเก็บเงินสองครั้ง",
}


@pytest.mark.parametrize(("language", "text"), sorted(TICKETS.items()))
def test_detects_the_language_of_a_support_ticket(language: str, text: str) -> None:
    assert detect_language(text) == language
    assert input_features(text).language == language


@pytest.mark.parametrize("text", ["", "thanks!", "12345 !!!", "OK", "https://example.com/a/b"])
def test_too_little_text_is_undetermined(text: str) -> None:
    assert detect_language(text) == "und"


def test_code_and_links_do_not_decide_the_language() -> None:
    text = (
        "Hallo, ich habe ein Problem mit der API und weiß nicht, was ich tun soll.\n"
        "```\nfor item in the_list: print(item) if it is not None and the value\n```\n"
        "https://example.com/the/and/is/of/to/in"
    )
    assert detect_language(text) == "de"


def test_mostly_latin_text_with_a_foreign_name_stays_latin() -> None:
    assert detect_language("Please send the invoice to Мария and the team, thank you") == "en"


# --- code --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "It fails here:\n```\nfoo = bar()\n```",
        "~~~\nanything\n~~~",
        "def refund(order_id):\n    return order_id",
        "class Order(Base):\n    pass",
        "import requests",
        "from app.models import Order, Refund",
        "function pay(amount) { return amount }",
        "const total = items.length",
        "items.map((x) => { return x })",
        "#include <stdio.h>",
        "The query SELECT id FROM orders WHERE paid is slow",
        "public static void main(String[] args) {",
        'console.log("paid")',
        "<div class='price'>12</div>",
        "<?php echo $x;",
        'Traceback (most recent call last):\n  File "x.py", line 1',
        "    at com.shop.Pay.run(Pay.java:42)",
        "$ curl -X POST https://api.example.com/v1",
        "I set `retries = 3` in the config",
        "a = 1;\nb = 2;\nc = 3;",
    ],
)
def test_detects_code(text: str) -> None:
    assert input_features(text).has_code


@pytest.mark.parametrize(
    "text",
    [
        "Let me know when it ships; thanks.",
        "Please select the plan from the list and let us know what to import.",
        "I can't import my contacts from Outlook. Which class of plan do I need?",
        "My order #1234 (placed on Monday) never arrived: can you check?",
        "Define the refund policy for me, please.",
        "Print the invoice and send it to me.",
        "Let x be the amount I paid; it was too high.",
    ],
)
def test_plain_support_text_is_not_code(text: str) -> None:
    assert not input_features(text).has_code


# --- questions, links, attachments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "questions"),
    [
        ("No question here.", 0),
        ("Where is my order?", 1),
        ("Where is my order? And when will it ship?? Who do I call?!", 3),
        ("¿Dónde está mi pedido? ¿Cuándo llega?", 2),
        ("注文はどこですか？", 1),
        ("See https://shop.example.com/track?id=1&x=2 for details", 0),
        ("```\nx = a if b else c  # ?\n```\nWhy does this fail?", 1),
    ],
)
def test_counts_questions(text: str, questions: int) -> None:
    assert input_features(text).questions == questions


def test_counts_links() -> None:
    text = "See https://a.example.com/x, http://b.example.com and www.c.example.com. Not a.b."
    assert input_features(text).links == 3


@pytest.mark.parametrize(
    ("text", "given", "attachments"),
    [
        ("Nothing attached.", 0, 0),
        ("I attached invoice.pdf and receipt.PNG, and invoice.pdf again.", 0, 2),
        ("[screenshot] shows the error", 0, 1),
        ("[attachment: bank statement.pdf]", 0, 1),
        ("Attachments: see below", 0, 1),
        ("Attachments: photo.jpg, scan.heic", 0, 2),
        ("Download https://x.example.com/files/report.pdf", 0, 0),
        ("My log is in app.log", 2, 3),
    ],
)
def test_counts_attachments(text: str, given: int, attachments: int) -> None:
    assert input_features(text, attachments=given).attachments == attachments


def test_negative_attachments_are_rejected() -> None:
    with pytest.raises(ValueError, match="attachments"):
        input_features("x", attachments=-1)


# --- rules -------------------------------------------------------------------------------------


def features(**changes: object) -> RouteFeatures:
    base: dict[str, object] = {
        "chars": 400,
        "tokens": 100,
        "language": "en",
        "has_code": False,
        "questions": 1,
        "links": 0,
        "attachments": 0,
    }
    return RouteFeatures.model_validate(base | changes)


def request(
    tenant: str | None = "globex", step: str = "classify", **changes: object
) -> RouteRequest:
    return RouteRequest(
        features=features(**changes), tenant=tenant, workflow="support_triage", step=step
    )


RULES = RouteRulesPolicy.model_validate(
    {
        "rules": [
            {"when": {"min_tokens": 2000}, "tier": "strong"},
            {"when": {"has_code": True}, "tier": "strong"},
            {"when": {"language_not": ["en"]}, "tier": "strong", "name": "foreign"},
            {"when": {"tenant": ["acme"]}, "tier": "strong"},
            {"when": {"min_questions": 3}, "tier": "strong"},
            {"when": {"min_attachments": 1, "step": ["draft_reply"]}, "tier": "strong"},
            {"when": {"min_links": 2, "max_tokens": 500}, "tier": "cheap"},
            {"when": {"language": ["EN"], "workflow": ["support_triage"]}, "tier": "cheap"},
        ],
        "default_tier": "strong",
    }
)


@pytest.mark.parametrize(
    ("req", "tier", "reason"),
    [
        (request(tokens=2000), "strong", "rule 1: tokens 2000 ≥ 2000 → strong"),
        (request(tokens=2000, has_code=True), "strong", "rule 1: tokens 2000 ≥ 2000 → strong"),
        (request(has_code=True), "strong", "rule 2: has_code → strong"),
        (request(language="de"), "strong", "rule 3 (foreign): language de not in [en] → strong"),
        (request(tenant="acme"), "strong", "rule 4: tenant acme → strong"),
        (request(questions=3), "strong", "rule 5: questions 3 ≥ 3 → strong"),
        (
            request(attachments=1, step="draft_reply"),
            "strong",
            "rule 6: attachments 1 ≥ 1, step draft_reply → strong",
        ),
        (
            request(links=2, tokens=500),
            "cheap",
            "rule 7: tokens 500 ≤ 500, links 2 ≥ 2 → cheap",
        ),
        (
            request(),
            "cheap",
            "rule 8: language en in [en], workflow support_triage → cheap",
        ),
        (request(language="und"), "strong", "default: no rule matched → strong"),
    ],
)
def test_the_first_matching_rule_wins_and_says_why(
    req: RouteRequest, tier: str, reason: str
) -> None:
    decision = choose_tier(RULES, req)
    assert (decision.tier, decision.reason) == (tier, reason)


def test_a_rule_needs_all_its_conditions() -> None:
    assert choose_tier(RULES, request(attachments=1, step="classify")).rule == 8
    assert choose_tier(RULES, request(links=2, tokens=501)).rule == 8
    assert choose_tier(RULES, request(tenant=None)).rule == 8


def test_no_rules_gives_the_default_tier() -> None:
    decision = choose_tier(RouteRulesPolicy(), request(tokens=10**6))
    assert (decision.tier, decision.rule) == ("cheap", None)


def test_explicit_tiers_bypass_the_rules() -> None:
    assert route_tier(RULES, "cheap", request(has_code=True)).reason == "step asks for cheap"
    assert route_tier(RULES, "auto", request(has_code=True)).rule == 2


def test_a_rule_without_conditions_is_rejected() -> None:
    with pytest.raises(ValidationError, match="at least one condition"):
        RouteRule.model_validate({"when": {}, "tier": "strong"})
    with pytest.raises(ValidationError):
        RouteWhen.model_validate({"min_tokns": 3})


# --- the learned rule ---------------------------------------------------------------------------

LEARNED_RULES = RouteRulesPolicy.model_validate(
    {
        "rules": [
            {"when": {"tenant": ["acme"]}, "tier": "cheap"},
            {"when": {"learned": True}, "tier": "strong", "name": "reviewers"},
        ]
    }
)


class Neighbours:
    """A fake learned rule: counts how often it is asked."""

    def __init__(self, verdict: LearnedVerdict | None) -> None:
        self.verdict = verdict
        self.asked: list[RouteRequest] = []

    def __call__(self, request: RouteRequest) -> LearnedVerdict | None:
        self.asked.append(request)
        return self.verdict


def test_inputs_like_rejected_ones_go_strong() -> None:
    learned = Neighbours(
        LearnedVerdict(troubled=True, reason="4 of 5 nearest past inputs rejected or edited")
    )
    decision = choose_tier(LEARNED_RULES, request(), learned)
    assert decision.tier == "strong"
    assert decision.reason == (
        "rule 2 (reviewers): learned: 4 of 5 nearest past inputs rejected or edited → strong"
    )
    assert learned.asked == [request()]


def test_the_learned_rule_is_asked_only_when_a_rule_needs_it() -> None:
    learned = Neighbours(LearnedVerdict(troubled=True, reason="r"))
    assert choose_tier(LEARNED_RULES, request(tenant="acme"), learned).tier == "cheap"
    assert learned.asked == []


@pytest.mark.parametrize(
    "verdict", [None, LearnedVerdict(troubled=False, reason="1 of 5 rejected or edited")]
)
def test_no_learned_signal_falls_through(verdict: LearnedVerdict | None) -> None:
    assert choose_tier(LEARNED_RULES, request(), Neighbours(verdict)).rule is None
    assert choose_tier(LEARNED_RULES, request()).rule is None  # no learned rule at all


def test_a_learned_false_condition_and_a_failing_learned_rule() -> None:
    rules = RouteRulesPolicy.model_validate(
        {"rules": [{"when": {"learned": False, "has_code": True}, "tier": "strong"}]}
    )

    def broken(_: RouteRequest) -> LearnedVerdict | None:
        raise RuntimeError("store down")

    decision = choose_tier(rules, request(has_code=True), broken)
    assert decision.reason == "rule 1: has_code, learned: no signal → strong"
    calm = Neighbours(LearnedVerdict(troubled=False, reason="0 of 5 rejected"))
    assert choose_tier(rules, request(has_code=True), calm).reason == (
        "rule 1: has_code, learned: 0 of 5 rejected → strong"
    )
    troubled = Neighbours(LearnedVerdict(troubled=True, reason="5 of 5 rejected"))
    assert choose_tier(rules, request(has_code=True), troubled).rule is None


def test_features_end_to_end() -> None:
    text = "Mein Skript wirft einen Fehler:\n```\nraise ValueError()\n```\nWarum? Was tun?"
    decision = choose_tier(RULES, RouteRequest(features=input_features(text), tenant="globex"))
    assert decision.reason == "rule 2: has_code → strong"
