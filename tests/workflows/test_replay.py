"""Every history saved in tests/histories still replays against today's workflow code.

A failure here means a change would break runs in flight: put it behind workflow.patched().
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tether.client import DATA_CONVERTER
from tether.worker import TetherPlugin
from workflows.document_summary_steps import SummaryResult
from workflows.steps import TetherResult
from workflows.support_triage_steps import TriageResult

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


SHAPES = (
    "support_triage_accepted",
    "support_triage_reviewed",
    "document_summary_accepted",
    "one_step_rejected",
    "one_step_spend_approved",
)
# One tag per patched change, oldest first; "" is the histories recorded before any patch.
TAGS = (
    "",
    ".checkpoint_local",
    ".checked_step",
    ".escalate_at_once",
    ".rate_limited",
    ".injection_quarantine",
    ".guards",
)
# Tags recorded side by side on parallel branches: a shape one of them added is not in the other
# (the ".guards" histories, recorded after both merged, hold every shape).
PARALLEL_TAGS = {".rate_limited": ".injection_quarantine", ".injection_quarantine": ".rate_limited"}
# The tags of the checkpoint patches (the histories from before each, and after both).
CHECKPOINT_TAGS = TAGS[:3]
# Shapes recorded from a tag on, with the tag that added them.
LATER_SHAPES = {
    "one_step_downgraded": ".checked_step",
    "one_step_fallback": ".checked_step",
    "one_step_escalated": ".escalate_at_once",
    "one_step_rate_waited": ".rate_limited",
    "one_step_rate_reviewed": ".rate_limited",
    "support_triage_quarantined": ".injection_quarantine",
    "support_triage_injection_rejected": ".injection_quarantine",
}


# How each recorded shape ended; a run's recorded result must still load into today's model.
OUTCOMES = {
    "support_triage_accepted": "completed",
    "support_triage_reviewed": "completed",
    "document_summary_accepted": "completed",
    "one_step_rejected": "rejected",
    "one_step_spend_approved": "completed",
    "one_step_downgraded": "completed",
    "one_step_fallback": "completed",
    "one_step_escalated": "completed",
    "one_step_rate_waited": "completed",
    "one_step_rate_reviewed": "completed",
    "support_triage_quarantined": "completed",
    "support_triage_injection_rejected": "rejected",
}
# Shapes that end before any model is called: nothing is charged.
UNCHARGED = {"support_triage_injection_rejected"}
RESULT_MODELS: dict[str, type[TetherResult]] = {
    "support_triage": TriageResult,
    "document_summary": SummaryResult,
    "test_one_step": OneStepResult,
    "test_one_strong_step": OneStepResult,
}


def _recorded_names() -> list[str]:
    names = [shape + tag for shape in SHAPES for tag in TAGS]
    for shape, since in LATER_SHAPES.items():
        later = TAGS[TAGS.index(since) :]
        names += [shape + tag for tag in later if tag != PARALLEL_TAGS.get(since)]
    return sorted(names)


@pytest.mark.parametrize("name", _recorded_names())
def test_each_history_ends_as_recorded_and_its_result_still_loads(name: str) -> None:
    path = HISTORIES[0].with_name(f"{name}.json")
    assert path in HISTORIES, f"history {name} is missing: the replay below would not cover it"
    history = _history(path)
    started = history.events[0].workflow_execution_started_event_attributes
    completed = history.events[-1].workflow_execution_completed_event_attributes
    assert history.events[-1].HasField("workflow_execution_completed_event_attributes")
    model = RESULT_MODELS[started.workflow_type.name]
    [result] = DATA_CONVERTER.payload_converter.from_payloads(
        list(completed.result.payloads), [model]
    )
    assert isinstance(result, model) and isinstance(result, TetherResult)
    assert result.status == OUTCOMES[name.split(".")[0]]
    assert result.steps and (result.cost_usd > 0 or name.split(".")[0] in UNCHARGED)


@workflow.defn(name="test_one_step", sandboxed=False)
class OneStepChangedWithoutAPatch:
    """test_one_step as an unpatched change would make it: no model call any more."""

    @workflow.run
    async def run(self, question: Question) -> OneStepResult:
        return OneStepResult(answer=question.text)


async def test_a_change_without_a_patch_fails_the_replay() -> None:
    # The safety net itself: replaying a recorded run against changed code must fail loudly.
    path = HISTORIES[0].with_name("one_step_rejected.checked_step.json")
    replayer = Replayer(workflows=[OneStepChangedWithoutAPatch], plugins=[TetherPlugin()])
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(_history(path))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


def _commands(history: WorkflowHistory) -> dict[str, int]:
    """How often a history schedules each activity type, and records local-activity markers."""
    counts: dict[str, int] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            counts[name] = counts.get(name, 0) + 1
        if event.HasField("marker_recorded_event_attributes"):
            name = event.marker_recorded_event_attributes.marker_name
            counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.parametrize("shape", SHAPES)
def test_every_checkpoint_shape_is_covered(shape: str) -> None:
    """Each tag's histories issue that change's commands, so the replay below exercises every
    side of the checkpoint patches: a checkpoint activity before each model call, then a local
    activity, then one activity that checkpoints and calls the model."""
    before, local, checked = (
        _commands(_history(HISTORIES[0].with_name(f"{shape}{tag}.json"))) for tag in CHECKPOINT_TAGS
    )
    steps = before.get("tether.cost_checkpoint", 0)
    assert steps > 0 and "core_local_activity" not in before
    assert local.get("core_local_activity") == steps and "tether.cost_checkpoint" not in local
    assert checked.get("tether.checked_llm_step") == steps
    assert "core_local_activity" not in checked and "tether.llm_step" not in checked


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(
        path.stem, json.loads(await asyncio.to_thread(path.read_text))
    )
    replayer = Replayer(workflows=TEST_WORKFLOWS, plugins=[TetherPlugin()])
    await replayer.replay_workflow(history)


def test_the_escalated_history_takes_the_escalate_at_once_path() -> None:
    """Only a run whose step was escalated records the patch; the others stay as they were."""
    escalated = HISTORIES[0].with_name("one_step_escalated.escalate_at_once.json")
    reviewed = HISTORIES[0].with_name("one_step_rejected.escalate_at_once.json")
    assert "escalate-at-once" in _patches(escalated)
    assert "escalate-at-once" not in _patches(reviewed)
    # Escalated at once: no escalation timer fires later, and one review is opened.
    commands = _commands(_history(escalated))
    assert commands.get("tether.open_review") == 1
    assert "tether.review_nudge" not in commands


def _patches(path: Path) -> list[str]:
    """The patch ids a history recorded, in order."""
    found = []
    for event in _history(path).events:
        if event.HasField("marker_recorded_event_attributes"):
            attrs = event.marker_recorded_event_attributes
            if attrs.marker_name == "core_patch":
                [payload] = attrs.details["patch-data"].payloads
                found.append(json.loads(payload.data)["id"])
    return found


def test_rate_limited_histories_take_the_rate_limited_path() -> None:
    """A step over its user's limit waited on a timer, or a reviewer let it go on; a run no
    limit held back records no patch."""
    waited = HISTORIES[0].with_name("one_step_rate_waited.rate_limited.json")
    reviewed = HISTORIES[0].with_name("one_step_rate_reviewed.rate_limited.json")
    plain = HISTORIES[0].with_name("one_step_rejected.rate_limited.json")
    assert "rate-limited-steps" in _patches(waited)
    assert "rate-limited-steps" in _patches(reviewed)
    assert "rate-limited-steps" not in _patches(plain)
    assert any(e.HasField("timer_started_event_attributes") for e in _history(waited).events)
    # Asked twice: held back, then (after the timer, or the approval) answered.
    assert _commands(_history(waited)).get("tether.checked_llm_step") == 2
    assert _commands(_history(reviewed)).get("tether.open_review") == 1


def test_only_a_quarantined_history_takes_the_injection_quarantine_path() -> None:
    """A run whose input the guard held back records the patch and asks no model before the
    reviewer's decision; a run with clean input never reaches the patch."""
    approved = HISTORIES[0].with_name("support_triage_quarantined.injection_quarantine.json")
    rejected = HISTORIES[0].with_name("support_triage_injection_rejected.injection_quarantine.json")
    clean = HISTORIES[0].with_name("support_triage_accepted.injection_quarantine.json")
    assert "injection-quarantine" in _patches(approved)
    assert "injection-quarantine" in _patches(rejected)
    assert "injection-quarantine" not in _patches(clean)
    # Rejected: one step activity (the quarantined one, which called no model), one review.
    commands = _commands(_history(rejected))
    assert commands.get("tether.checked_llm_step") == 1
    assert commands.get("tether.open_review") == 1
    # Approved: the first step asked again after the decision, then the two others.
    assert _commands(_history(approved)).get("tether.checked_llm_step") == 4
