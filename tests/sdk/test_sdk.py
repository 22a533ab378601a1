"""A workflow written against ``tether.sdk`` alone (the README's example) runs on the worker."""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

import tether.sdk
from policies.models import TetherPolicy
from tests.policy_variants import gated
from tests.sdk.sentiment import SentimentWorkflow
from tests.sdk.sentiment_steps import Review, SentimentResult
from tether.core.settings import Settings
from tether.worker import running_worker

README = Path(__file__).parent.parent.parent / "README.md"
EXAMPLE_MODULES = (
    Path(__file__).parent / "sentiment_steps.py",
    Path(__file__).parent / "sentiment.py",
)


def _readme_blocks() -> list[str]:
    section = README.read_text().split("## Writing a workflow", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def _tether_imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    own = ("tether", "workflows", "activities", "policies", "review_ui")
    return {name for name in found if name.split(".")[0] in own}


def test_every_public_name_is_importable() -> None:
    missing = [name for name in tether.sdk.__all__ if not hasattr(tether.sdk, name)]
    assert missing == []


def test_the_readme_example_imports_nothing_of_tether_but_the_sdk() -> None:
    blocks = _readme_blocks()
    assert len(blocks) == 2
    imported = set().union(*(_tether_imports(block) for block in blocks))
    assert imported == {"tether.sdk", "workflows.sentiment_steps"}


def test_the_example_here_is_the_readme_example() -> None:
    ours = [path.read_text().split('"""', 2)[2] for path in EXAMPLE_MODULES]
    theirs = [
        block.replace("workflows.sentiment_steps", "tests.sdk.sentiment_steps")
        for block in _readme_blocks()
    ]
    assert [text.strip() for text in ours] == [text.strip() for text in theirs]


@pytest.mark.integration
async def test_a_workflow_written_with_the_sdk_runs_to_completion(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    async with running_worker(
        client, settings, policy=gated(policy, accept=0.0), extra_workflows=[SentimentWorkflow]
    ):
        result = await client.execute_workflow(
            "sentiment",
            Review(text="The parcel came early and works perfectly.", tenant="acme"),
            id=f"sentiment-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
            result_type=SentimentResult,
        )

    assert result.status == "completed"
    assert result.label
    assert [step.name for step in result.steps] == ["score"]
    assert result.cost_usd > 0
