"""A step's route as the activity chooses it: by the rules (with the learned rule's hook), by
input length when the policy has no rules, or the model the step names."""

from __future__ import annotations

import httpx

from activities.deps import ActivityDeps
from activities.providers.registry import ProviderRegistry
from activities.step_routing import route_request, step_route
from policies.models import TetherPolicy
from policies.route_features import RouteRequest, input_features
from policies.route_rules import LearnedVerdict
from tether.contracts import LlmStepInput, PromptTemplate
from tether.core.settings import Settings


def deps(settings: Settings, policy: TetherPolicy, **fields: object) -> ActivityDeps:
    providers = ProviderRegistry(settings, httpx.AsyncClient())
    return ActivityDeps(settings, policy, providers, **fields)  # type: ignore[arg-type]


def request(text: str) -> RouteRequest:
    return RouteRequest(features=input_features(text), tenant="default", workflow="w", step="s")


def test_the_learned_rule_sends_a_troubled_input_to_the_strong_tier(
    settings: Settings, policy: TetherPolicy
) -> None:
    asked: list[RouteRequest] = []

    def troubled(req: RouteRequest) -> LearnedVerdict:
        asked.append(req)
        return LearnedVerdict(troubled=True, reason="4 of 5 nearest past inputs were rejected")

    plain = request("Where is my parcel?")
    route = step_route(
        deps(settings, policy, learned_rule=troubled),
        tier="auto",
        model=None,
        input_chars=20,
        request=plain,
    )
    assert asked == [plain]
    assert (route.models, route.tier) == (["simulated/strong"], "strong")
    assert "learned: 4 of 5 nearest past inputs were rejected" in route.reason
    without = step_route(
        deps(settings, policy), tier="auto", model=None, input_chars=20, request=plain
    )
    assert without.tier == "cheap" and without.reason.startswith("default: no rule matched")


def test_without_rules_auto_goes_by_input_length_and_a_named_model_is_the_route(
    settings: Settings, policy: TetherPolicy
) -> None:
    bare = deps(settings, policy.model_copy(update={"route_rules": None}))
    long = step_route(bare, tier="auto", model=None, input_chars=5000, request=request("x"))
    assert (long.tier, long.reason) == ("strong", "input 5000 chars vs 4000 → strong")
    named = step_route(bare, tier="auto", model="openai/gpt-4o", input_chars=5000, request=None)
    assert (named.models, named.tier) == (["openai/gpt-4o"], None)
    assert named.event("openai/gpt-4o").outcome == "model"


def test_a_long_input_is_measured_on_its_prefix_and_sized_whole() -> None:
    step = LlmStepInput(
        run_id="r",
        workflow="document_summary",
        step="final_summary",
        tenant="acme",
        prompt=PromptTemplate(id="p", version="1", system="s", user="{text}"),
        output_model="m:M",
        idempotency_key="k",
    )
    sentence = "The customer reports that the invoice total does not match the order. "
    text = sentence * 3000  # about 210,000 characters
    routed = route_request(step, {"text": text})
    assert routed.features.chars == len(text)
    whole = input_features(text).tokens
    assert abs(routed.features.tokens - whole) / whole < 0.01
    assert routed.features.language == "en" and not routed.features.has_code
    assert (routed.tenant, routed.workflow, routed.step) == (
        "acme",
        "document_summary",
        "final_summary",
    )
