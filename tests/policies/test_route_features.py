# ruff: noqa: RUF001  (tickets in other scripts are the point of these tests)
"""Routing features of a step's input: size, language, code, questions, links, attachments."""

from __future__ import annotations

import pytest

from policies.route_features import detect_language, estimate_input_tokens, input_features

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
