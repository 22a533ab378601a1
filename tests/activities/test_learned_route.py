"""The learned routing rule: a step whose nearest past inputs reviewers rejected or edited goes
to the strong model. Real store (SQLite), real all-MiniLM-L6-v2, the verdicts written the way
the review activity writes them."""

from __future__ import annotations

from pathlib import Path

import httpx

from activities.deps import ActivityDeps
from activities.providers.base import ChatMessage
from activities.providers.registry import ProviderRegistry
from activities.step_cache import StepCache
from policies.guard_routing import RouteRule, RouteRulesPolicy, RouteWhen
from policies.loader import load_policy
from policies.route_features import RouteRequest, input_features
from policies.route_rules import route_tier
from tests.conftest import make_settings
from tether.contracts import LlmStepInput, PromptTemplate
from tether.store.audit_key import configure_audit
from tether.store.cache import record_verdict
from tether.store.engine import session_scope, upgrade_database

PROMPT = PromptTemplate(id="support.answer", version="3", system="Answer.", user="{text}")
RULES = RouteRulesPolicy(
    rules=[RouteRule(when=RouteWhen(learned=True), tier="strong", name="reviewers disagreed")]
)
PAST = [  # (input, reviewer's decision)
    ("How do I reset my password?", "reject"),
    ("I forgot my password, how can I reset it?", "edit"),
    ("Can you help me reset my password?", "reject"),
    ("What are the steps to reset my password?", "approve"),
    ("How can I reset my password?", "approve"),
    ("Do you ship to Canada?", "reject"),
]


def step_input(text: str, run: str, tenant: str = "acme") -> LlmStepInput:
    return LlmStepInput(
        run_id=run,
        workflow="support_triage",
        step="answer",
        tenant=tenant,
        prompt=PROMPT,
        variables={"text": text},
        output_model="tests.workflows.sample_workflows:Answer",
        idempotency_key=f"{run}/answer",
    )


def request_for(text: str) -> RouteRequest:
    return RouteRequest(
        features=input_features(text), tenant="acme", workflow="support_triage", step="answer"
    )


async def test_inputs_like_rejected_ones_go_to_the_strong_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "localhost:1")
    upgrade_database(settings.resolved_database_url)
    configure_audit(settings)
    async with httpx.AsyncClient() as http:
        deps = ActivityDeps(settings, load_policy(), ProviderRegistry(settings, http))
        cache = StepCache(deps)
        for number, (text, decision) in enumerate(PAST):
            inp = step_input(text, f"run-{number}")
            messages = [ChatMessage(role="user", content=text)]
            key = cache.key_for(inp, "simulated/cheap", messages, inp.variables)
            assert key is not None
            digest = f"sha256:{number:064d}"
            await cache.remember(
                key,
                inp,
                output={"answer": str(number), "sure": True},
                raw_output="{}",
                held=False,
                output_digest=digest,
                confidence={"score": 0.9},
                provider="simulated",
            )
            with session_scope(settings.resolved_database_url) as session:
                record_verdict(
                    session,
                    "acme",
                    "support_triage",
                    "answer",
                    digest,
                    decision,
                    run_id=f"run-{number}",  # the reviewed run, whose answer it is
                )

        text = "Please help, I need to reset my password"
        rule = await cache.learned_rule("acme", "support_triage", "answer", text)
        decision = route_tier(RULES, "auto", request_for(text), learned=rule)
        assert decision.tier == "strong"
        assert "learned: 3 of 5 nearest rejected or edited" in decision.reason

        # Unlike the password questions: too few near inputs were rejected or edited.
        text = "Where can I download my invoice?"
        rule = await cache.learned_rule("acme", "support_triage", "answer", text)
        assert route_tier(RULES, "auto", request_for(text), learned=rule).tier == "cheap"

        # Another tenant's reviewers judged nothing yet: no signal, the default tier.
        rule = await cache.learned_rule("globex", "support_triage", "answer", "reset my password")
        decision = route_tier(RULES, "auto", request_for("reset my password"), learned=rule)
        assert decision.tier == "cheap" and decision.rule is None
