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
from tether.client import DATA_CONVERTER
from workflows.catalog import CATALOG

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


SHAPES = (
    "support_triage_accepted",
    "support_triage_reviewed",
    "document_summary_accepted",
    "one_step_rejected",
    "one_step_spend_approved",
)
# One tag per patched change, oldest first; "" is the histories recorded before any patch.
TAGS = ("", ".checkpoint_local")


def test_histories_are_present() -> None:
    names = {path.stem for path in HISTORIES}
    assert {shape + tag for shape in SHAPES for tag in TAGS} <= names


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


def _checkpoints(history: WorkflowHistory) -> tuple[int, int]:
    """(checkpoints scheduled as activities, local-activity markers) in one history."""
    scheduled = markers = 0
    for event in history.events:
        attrs = event.activity_task_scheduled_event_attributes
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled += attrs.activity_type.name == "tether.cost_checkpoint"
        if event.HasField("marker_recorded_event_attributes"):
            markers += event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    return scheduled, markers


@pytest.mark.parametrize("shape", SHAPES)
def test_both_checkpoint_shapes_are_covered(shape: str) -> None:
    """The old histories schedule checkpoints as activities, the new ones as local activities,
    so the replay below exercises both sides of the checkpoint-as-local-activity patch."""
    before = _checkpoints(_history(HISTORIES[0].with_name(f"{shape}.json")))
    after = _checkpoints(_history(HISTORIES[0].with_name(f"{shape}.checkpoint_local.json")))
    assert before[0] > 0 and before[1] == 0
    assert after[0] == 0 and after[1] == before[0]


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(
        path.stem, json.loads(await asyncio.to_thread(path.read_text))
    )
    replayer = Replayer(
        workflows=[entry.workflow for entry in CATALOG.values()] + TEST_WORKFLOWS,
        data_converter=DATA_CONVERTER,
    )
    await replayer.replay_workflow(history)
