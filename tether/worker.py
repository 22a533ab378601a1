"""Assembling a worker: every workflow, every activity, one shared HTTP client per process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.checkpoint import CheckpointActivities
from activities.deps import ActivityDeps, store_executor_for
from activities.documents import DocumentActivities
from activities.llm_step import LlmStepActivities
from activities.notify import ReviewNotifier, SilentNotifier
from activities.providers.http import create_http_client
from activities.providers.registry import ProviderRegistry
from activities.review import ReviewActivities
from policies.loader import load_policy
from policies.models import TetherPolicy
from tether.core.settings import Settings
from workflows.catalog import CATALOG


def activities_for(deps: ActivityDeps, notifier: ReviewNotifier) -> list[Any]:
    llm = LlmStepActivities(deps)
    checkpoint = CheckpointActivities(deps)
    review = ReviewActivities(deps, notifier)
    documents = DocumentActivities(deps)
    return [
        llm.checked_llm_step,
        llm.llm_step,
        checkpoint.cost_checkpoint,
        review.open_review,
        review.record_decision,
        review.review_nudge,
        documents.prepare_document,
    ]


@asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    *,
    policy: TetherPolicy | None = None,
    task_queue: str | None = None,
    notifier: ReviewNotifier | None = None,
    extra_workflows: Sequence[type] = (),
) -> AsyncIterator[Worker]:
    """Run a worker until the block exits; shuts down gracefully and closes the HTTP pool."""
    policy = policy or load_policy(settings.policy_file)
    async with AsyncExitStack() as stack:
        http = create_http_client(settings)
        stack.push_async_callback(http.aclose)
        deps = ActivityDeps(
            settings=settings,
            policy=policy,
            providers=ProviderRegistry(settings, http),
            store_executor=stack.enter_context(store_executor_for(settings.resolved_database_url)),
        )
        worker = Worker(
            client,
            task_queue=task_queue or settings.task_queue,
            workflows=[entry.workflow for entry in CATALOG.values()] + list(extra_workflows),
            activities=activities_for(deps, notifier or _default_notifier(settings, http)),
            max_concurrent_activities=200,
            max_concurrent_workflow_tasks=100,
        )
        async with worker:
            yield worker


def _default_notifier(settings: Settings, http: Any) -> ReviewNotifier:
    try:
        from activities.slack import notifier_from_settings
    except ImportError:
        return SilentNotifier()
    return notifier_from_settings(settings)
