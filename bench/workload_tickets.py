"""The 2,000-ticket support workload: paraphrase families and a realistic mix, from a fixed seed.

Support traffic repeats itself. Most tickets are one of a few dozen questions asked in the
customer's own words, many word for word the same (the FAQ a help-centre link answers), some
about one order or invoice; a minority are long, mixed, pasted logs, or in another language.
The workload draws from three kinds:

- ``faq``: a family's canonical question in one of its few phrasings, no specific detail. The
  same text arrives many times (exact repeats) and its paraphrases arrive too.
- ``specific``: a family's question about one order, invoice or device: a paraphrase with its
  own slot values (order id, amount, error code), so the facts and the reply differ per ticket.
- ``complex``: long tickets: several questions, a pasted log or code, a link or attachment, or
  written in German, French or Spanish.

Every ticket carries the truth of its family (category and priority), which the stand-in models
of ``bench.workload_model`` use to answer and the bench's judge uses to grade.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from workflows.support_triage_steps import Ticket

__all__ = ["FAMILIES", "Family", "WorkloadTicket", "generate"]

Kind = Literal["faq", "specific", "complex"]
MIX: dict[Kind, float] = {"faq": 0.40, "specific": 0.37, "complex": 0.23}


@dataclass(frozen=True)
class Family:
    name: str
    category: str
    priority: str
    subjects: tuple[str, ...]
    faq: tuple[str, ...]
    """Generic phrasings, no detail: these repeat word for word."""
    specific: tuple[str, ...]
    """Phrasings with slots: {order}, {amount}, {code}, {device}."""
    foreign: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkloadTicket:
    index: int
    family: str
    kind: Kind
    category: str
    priority: str
    ticket: Ticket
    order: str | None = None
    """The order/invoice id a correct reply must name (specific and complex tickets)."""


FAMILIES: tuple[Family, ...] = (
    Family(
        "double_charge",
        "billing",
        "high",
        ("Charged twice", "Duplicate charge on my card", "Double payment"),
        (
            "I was charged twice for the same order. Can you refund the duplicate payment?",
            "My card shows two identical charges for one purchase. Please refund one of them.",
            "You billed me two times for a single order, please give me my money back for the extra one.",
        ),
        (
            "I was charged twice for order {order} ({amount} each). Please refund the duplicate.",
            "Order {order} appears twice on my statement, {amount} both times. Refund one, please.",
            "My bank shows a double payment of {amount} for order {order}. I only ordered once.",
        ),
        (
            "Ich wurde für die Bestellung {order} zweimal belastet ({amount}). Bitte erstatten Sie die doppelte Zahlung.",
            "On m'a débité deux fois pour la commande {order} ({amount}). Merci de rembourser le doublon.",
        ),
    ),
    Family(
        "refund_status",
        "billing",
        "normal",
        ("Refund status", "Where is my refund?", "Refund not received"),
        (
            "I returned my item two weeks ago and still have not received the refund. When will it arrive?",
            "How long does a refund take to show up on my card after a return?",
            "My refund still hasn't come through after I sent the item back. Any update?",
        ),
        (
            "I returned order {order} on the 3rd and the {amount} refund has not arrived yet.",
            "The refund of {amount} for order {order} is still missing from my account.",
            "When will I get the {amount} back for returned order {order}?",
        ),
        (
            "¿Dónde está mi reembolso de {amount} del pedido {order}? Devolví el artículo hace dos semanas.",
        ),
    ),
    Family(
        "invoice_mismatch",
        "billing",
        "normal",
        ("Invoice question", "Wrong amount on invoice", "Invoice does not match plan"),
        (
            "My invoice shows a price different from my subscription plan. Can you explain?",
            "The amount on my latest invoice is higher than what my plan costs.",
            "Why does my invoice not match the price of the plan I signed up for?",
        ),
        (
            "Invoice {order} says {amount} but my plan is cheaper than that. Please correct it.",
            "I was invoiced {amount} on {order}; my plan price is lower. What happened?",
            "Invoice {order} lists {amount}, which is not my plan's price.",
        ),
    ),
    Family(
        "cancel_subscription",
        "account",
        "normal",
        ("Cancel my subscription", "How to cancel", "Stop my plan"),
        (
            "How do I cancel my subscription?",
            "I want to cancel my plan. Where do I do that?",
            "Please tell me how to stop my subscription before the next billing date.",
        ),
        (
            "Please cancel subscription {order} before it renews; I do not want the {amount} charge.",
            "I'd like to end my plan (account {order}) so I'm not billed {amount} again.",
            "Cancel {order} please, the renewal of {amount} is next week.",
        ),
        ("Bitte kündigen Sie mein Abonnement {order}, bevor es sich für {amount} verlängert.",),
    ),
    Family(
        "password_reset",
        "account",
        "normal",
        ("Password reset", "Cannot reset password", "Reset link expired"),
        (
            "I cannot reset my password; the reset link has expired.",
            "The password reset link in my email doesn't work anymore.",
            "How can I reset my password? The link I got says it expired.",
        ),
        (
            "The reset link for account {order} expired before I could use it. Please send a new one.",
            "I can't get into account {order}; every reset link says it has expired.",
            "Account {order}: password reset fails with an expired-link message.",
        ),
        ("Le lien de réinitialisation du mot de passe pour le compte {order} a expiré.",),
    ),
    Family(
        "locked_account",
        "account",
        "high",
        ("Account locked", "Locked out", "Cannot log in, account blocked"),
        (
            "My account got locked after too many login attempts. How do I unlock it?",
            "I'm locked out of my account. Please help me get back in.",
            "The site says my account is blocked. What do I do?",
        ),
        (
            "Account {order} is locked after failed logins and I have a payment of {amount} due today.",
            "I am locked out of {order}; I need access urgently to pay {amount}.",
            "Please unlock account {order}, it was blocked this morning.",
        ),
    ),
    Family(
        "app_crash",
        "technical",
        "high",
        ("App crashes on login", "App keeps crashing", "Crash after update"),
        (
            "Since the update the app crashes when I log in.",
            "The app closes immediately every time I try to sign in.",
            "After the latest update the app crashes on startup.",
        ),
        (
            "Since the update the app crashes with error {code} when I log in on my {device}.",
            "Error {code} and then a crash whenever I sign in from the {device}.",
            "My {device} app dies with {code} right after login.",
        ),
        (
            "Seit dem Update stürzt die App auf meinem {device} beim Anmelden mit Fehler {code} ab.",
            "Desde la actualización la aplicación se cierra con el error {code} en mi {device}.",
        ),
    ),
    Family(
        "sync_broken",
        "technical",
        "normal",
        ("Sync not working", "Data not syncing", "Changes don't sync"),
        (
            "My changes don't sync between my phone and laptop anymore.",
            "Sync stopped working; edits on one device don't show on the other.",
            "Why is my data not syncing across devices?",
        ),
        (
            "Sync fails on my {device} with code {code}; nothing updates since yesterday.",
            "Error {code} when syncing from {device}, edits are lost.",
            "My {device} shows {code} and won't sync.",
        ),
    ),
    Family(
        "export_csv",
        "feature_request",
        "low",
        ("Export to CSV", "Feature request: CSV export", "Can I export my data?"),
        (
            "It would be great to export my reports to CSV.",
            "Please add a CSV export for the reports page.",
            "Could you add a way to download my data as a spreadsheet?",
        ),
        (
            "We need CSV export for report {order}; our finance team pays {amount} a month for it.",
            "Feature request: CSV export of project {order}.",
            "Could project {order} be exported to CSV? We'd upgrade to the {amount} plan for it.",
        ),
    ),
    Family(
        "dark_mode",
        "feature_request",
        "low",
        ("Dark mode", "Please add dark mode", "Night theme request"),
        (
            "Please add a dark mode, the white screen hurts my eyes at night.",
            "Any plans for a dark theme?",
            "I'd love a night mode in the app.",
        ),
        (
            "Dark mode on the {device} app please; the current theme is too bright.",
            "Could the {device} version get a dark theme?",
            "Night theme for {device}, please.",
        ),
    ),
    Family(
        "shipping_delay",
        "other",
        "normal",
        ("Where is my package?", "Package not arrived", "Tracking not updating"),
        (
            "My package has not arrived and the tracking hasn't moved in a week.",
            "Where is my parcel? Tracking is stuck.",
            "The delivery is late and the tracking page shows no progress.",
        ),
        (
            "Tracking for parcel {order} has not moved in a week. Any news?",
            "Parcel {order} is stuck at the depot since Monday.",
            "Order {order} still isn't delivered and tracking is frozen.",
        ),
        (
            "Mein Paket {order} ist seit einer Woche nicht weitergekommen. Gibt es Neuigkeiten?",
            "Mi paquete {order} lleva una semana sin moverse en el seguimiento.",
        ),
    ),
    Family(
        "opening_hours",
        "other",
        "low",
        ("Support hours", "When are you open?", "Contact hours"),
        (
            "What are your support opening hours?",
            "When can I reach your support team by phone?",
            "What time does customer service open?",
        ),
        (
            "Can I call about order {order} on Sunday? What are your hours?",
            "When is support open? I need help with {order}.",
            "What hours can I phone about my {device}?",
        ),
    ),
)

_DEVICES = ("iPhone 15", "Pixel 8", "Galaxy S23", "iPad", "Windows laptop", "MacBook")
_LOG = (
    "```\n{ts} ERROR auth.session: token refresh failed code={code}\n"
    "{ts} WARN  sync.client: retrying in 30s (attempt 3)\n"
    "Traceback (most recent call last):\n"
    '  File "client.py", line 212, in refresh\n'
    "    raise SessionError(code)\nSessionError: {code}\n```"
)
_EXTRA_QUESTIONS = (
    "Also, can you tell me whether my data is safe?",
    "And will I be charged while this is broken?",
    "Separately, how do I add a second user to my account?",
    "Is there a discount for the trouble?",
    "Can you also confirm my current plan and renewal date?",
)
_BACKGROUND = (
    "I have been a customer for six years and this is the first time I write to you. "
    "Over the past month I contacted you twice by chat and once by phone; each time I was told "
    "it would be fixed within a few days, and each time nothing changed. I tried everything your "
    "help centre suggests: logging out, reinstalling, clearing the cache, another browser. "
)


def _slots(rng: random.Random) -> dict[str, str]:
    return {
        "order": f"A-{rng.randint(10_000, 99_999)}",
        "amount": f"${rng.randint(9, 480)}.{rng.randint(0, 99):02d}",
        "code": f"E{rng.randint(100, 999)}",
        "device": rng.choice(_DEVICES),
    }


def _ticket(index: int, subject: str, body: str, rng: random.Random) -> Ticket:
    return Ticket(
        subject=subject, body=body, customer_id=f"customer-{rng.randint(1, 400)}", tenant="bench"
    )


def _complex_body(family: Family, slots: dict[str, str], rng: random.Random) -> str:
    style = rng.choice(("long", "log", "foreign", "attachment"))
    if style == "foreign" and family.foreign:
        return rng.choice(family.foreign).format(**slots)
    core = rng.choice(family.specific).format(**slots)
    parts = [core]
    if style in ("long", "log"):
        parts.insert(0, _BACKGROUND)
    if style == "log":
        parts.append(
            _LOG.format(ts=f"2026-11-{rng.randint(1, 28):02d}T10:1{rng.randint(0, 9)}", **slots)
        )
    if style == "attachment":
        parts.append(
            f"Screenshot attached: https://files.example.com/u/{slots['order']}/screen.png"
        )
    parts += rng.sample(_EXTRA_QUESTIONS, k=rng.randint(1, 3))
    return "\n\n".join(parts)


def generate(count: int = 2000, seed: int = 20261129) -> list[WorkloadTicket]:
    """``count`` tickets of the mix above, the same for the same seed."""
    rng = random.Random(seed)
    # Some questions are far more common than others (a few families make most of the traffic).
    weights = [1.0 / (rank + 1) ** 0.6 for rank in range(len(FAMILIES))]
    kinds: list[Kind] = list(MIX)
    tickets: list[WorkloadTicket] = []
    for index in range(count):
        family = rng.choices(FAMILIES, weights=weights)[0]
        kind = rng.choices(kinds, weights=[MIX[k] for k in kinds])[0]
        slots = _slots(rng)
        subject = rng.choice(family.subjects)
        order: str | None = None
        if kind == "faq":
            body = rng.choice(family.faq)
        elif kind == "specific":
            body, order = rng.choice(family.specific).format(**slots), slots["order"]
        else:
            body, order = _complex_body(family, slots, rng), slots["order"]
        if order is not None and order not in body:
            order = None
        tickets.append(
            WorkloadTicket(
                index=index,
                family=family.name,
                kind=kind,
                category=family.category,
                priority=family.priority,
                ticket=_ticket(index, subject, body, rng),
                order=order,
            )
        )
    return tickets


def subject_index() -> dict[str, Family]:
    """Which family a subject line belongs to (subjects are unique across families)."""
    index: dict[str, Family] = {}
    for family in FAMILIES:
        for subject in family.subjects:
            if subject in index:
                raise ValueError(f"subject {subject!r} is in two families")
            index[subject] = family
    return index
