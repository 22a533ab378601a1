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


def test_histories_are_present() -> None:
    names = {path.stem for path in HISTORIES}
    assert {
        "support_triage_accepted",
        "support_triage_reviewed",
        "document_summary_accepted",
    } <= names


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
