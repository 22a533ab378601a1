"""Assembling a worker: one Temporal plugin and the one place that builds a ``Worker``.

``TetherPlugin`` bundles what every worker and replayer of Tether needs: the data converter,
the sandbox's passthrough modules, the workflows of the catalog, the activities and the
interceptors. ``running_worker`` adds the per-process resources (one HTTP pool, one store
executor) and runs a worker with it; ``tether worker``, ``tether dev``, the tests and the
benchmarks (through ``tether worker``) all start their workers here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client
from temporalio.plugin import SimplePlugin
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.budget_alerts import BudgetAlerts, resend_until_cancelled
from activities.checkpoint import CheckpointActivities
from activities.deps import ActivityDeps, store_executor_for
from activities.documents import DocumentActivities
from activities.health_publisher import publish_until_cancelled
from activities.llm_step import LlmStepActivities
from activities.notify import ReviewNotifier, SilentNotifier
from activities.observability import ObservingInterceptor
from activities.provider_health import configure_provider_health
from activities.providers.http import create_http_client
from activities.providers.registry import ProviderRegistry
from activities.retention import prune_until_cancelled
from activities.review import ReviewActivities
from policies.loader import load_policy
from policies.models import TetherPolicy
from tether.client import DATA_CONVERTER
from tether.core.settings import Settings
from tether.store.audit_key import configure_audit
from tether.store.pii_vault import pii_sealer
from tether.temporal_metrics import draining_sdk_metrics
from tether.tracing import tracing_interceptors
from workflows.catalog import CATALOG

PLUGIN_NAME = "tether.TetherPlugin"

SANDBOX_PASSTHROUGH_MODULES = ("activities", "policies", "tether")
"""Imported once by the worker, not again inside every workflow's sandbox: payload models,
policies and failure types are deterministic at import and shared with activities. The
workflows themselves stay sandboxed."""

MAX_CONCURRENT_ACTIVITIES = 200
MAX_CONCURRENT_WORKFLOW_TASKS = 100


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every Tether workflow runs in, on workers and replayers alike."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(
        *SANDBOX_PASSTHROUGH_MODULES
    )
    return SandboxedWorkflowRunner(restrictions=restrictions)


class TetherPlugin(SimplePlugin):
    """Everything a Tether worker or replayer is configured with, in one plugin.

    Args:
        activities: Activity callables to register (``activities_for`` builds Tether's); a
            replayer needs none.
        extra_workflows: Workflows to run besides the catalog's (tests' own workflows).
        interceptors: Worker and client interceptors, applied once per worker.

    Example::

        replayer = Replayer(workflows=[], plugins=[TetherPlugin()])
    """

    def __init__(
        self,
        activities: Sequence[Callable[..., object]] = (),
        *,
        extra_workflows: Sequence[type] = (),
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        super().__init__(
            PLUGIN_NAME,
            data_converter=DATA_CONVERTER,
            workflows=[entry.workflow for entry in CATALOG.values()] + list(extra_workflows),
            activities=list(activities),
            workflow_runner=workflow_runner(),
            interceptors=list(interceptors),
        )


def build_worker(
    client: Client,
    task_queue: str,
    plugin: TetherPlugin,
    *,
    graceful_shutdown: timedelta = timedelta(0),
) -> Worker:
    """The one ``Worker(...)`` of the code base: Tether's plugin and concurrency limits.

    Args:
        graceful_shutdown: Once shutdown starts (polling stops at once), how long running
            activities may still finish before they are cancelled.
    """
    return Worker(
        client,
        task_queue=task_queue,
        plugins=[plugin],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_workflow_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
        graceful_shutdown_timeout=graceful_shutdown,
    )


def activities_for(deps: ActivityDeps, notifier: ReviewNotifier) -> list[Callable[..., object]]:
    """Every activity a Tether worker registers, bound to this process's dependencies."""
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
    """Run a worker until the block exits, then drain it and close the HTTP pool.

    Draining: the worker stops polling at once and its running activities get
    ``settings.worker_shutdown_grace_s`` to finish and report before they are cancelled.
    """
    policy = policy or load_policy(settings.policy_file)
    configure_audit(settings)  # activities append to the audit log; no key refuses to start
    pii_sealer(settings)  # steps keep redacted values in the PII vault; no key refuses to start
    async with AsyncExitStack() as stack:
        http = create_http_client(settings)
        stack.push_async_callback(http.aclose)
        deps = ActivityDeps(
            settings=settings,
            policy=policy,
            providers=ProviderRegistry(settings, http),
            store_executor=stack.enter_context(store_executor_for(settings.resolved_database_url)),
            health=configure_provider_health(policy.provider_health),
        )
        publisher = asyncio.create_task(
            publish_until_cancelled(deps, policy.provider_health.publish_every_s)
        )
        stack.push_async_callback(_stop, publisher)
        if policy.retention.enabled:
            pruner = asyncio.create_task(prune_until_cancelled(deps, policy.retention))
            stack.push_async_callback(_stop, pruner)
        alerts = BudgetAlerts(deps, _alert_slack(settings))
        stack.push_async_callback(alerts.settle)  # after the worker has drained
        if alerts.slack is not None:
            resender = asyncio.create_task(resend_until_cancelled(alerts))
            stack.push_async_callback(_stop, resender)
        plugin = TetherPlugin(
            activities_for(deps, notifier or _default_notifier(settings, http)),
            extra_workflows=extra_workflows,
            interceptors=[
                ObservingInterceptor(deps, alerts),
                *tracing_interceptors(settings),  # the client's own: not added twice
            ],
        )
        grace = timedelta(seconds=settings.worker_shutdown_grace_s)
        worker = build_worker(
            client, task_queue or settings.task_queue, plugin, graceful_shutdown=grace
        )
        await stack.enter_async_context(draining_sdk_metrics(client))
        async with worker:
            yield worker


def _alert_slack(settings: Settings) -> AsyncWebClient | None:
    try:
        from activities.slack import slack_client
    except ImportError:
        return None
    return slack_client(settings)


def _default_notifier(settings: Settings, http: httpx.AsyncClient) -> ReviewNotifier:
    try:
        from activities.slack import notifier_from_settings
    except ImportError:
        return SilentNotifier()
    return notifier_from_settings(settings)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
