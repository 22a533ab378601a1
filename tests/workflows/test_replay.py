"""Every history saved in tests/histories still replays against today's workflow code.

A failure here means a change would break runs in flight: put it behind workflow.patched().
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.sample_workflows import TEST_WORKFLOWS
from tether.worker import TetherPlugin

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


SHAPES = (
    "support_triage_accepted",
    "support_triage_reviewed",
    "document_summary_accepted",
    "one_step_rejected",
    "one_step_spend_approved",
)
# One tag per patched change, oldest first; "" is the histories recorded before any patch.
TAGS = ("", ".checkpoint_local", ".checked_step")
# Shapes recorded from a tag on, with the tag that added them.
LATER_SHAPES = {"one_step_downgraded": ".checked_step", "one_step_fallback": ".checked_step"}


def test_histories_are_present() -> None:
    names = {path.stem for path in HISTORIES}
    assert {shape + tag for shape in SHAPES for tag in TAGS} <= names
    for shape, since in LATER_SHAPES.items():
        assert {shape + tag for tag in TAGS[TAGS.index(since) :]} <= names


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
        _commands(_history(HISTORIES[0].with_name(f"{shape}{tag}.json"))) for tag in TAGS
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
