"""What a workflow developer imports: ``from tether.sdk import TetherWorkflow, LlmStep, ...``.

Everything here is re-exported from the module that defines it; those modules may move, this
list stays. A workflow module can import it at the top, outside
``workflow.unsafe.imports_passed_through()``: the worker passes ``tether`` through its sandbox.

- ``TetherWorkflow``: the base class; ``self.begin(...)``, ``await self.llm_step(STEP, inputs)``,
  ``await self.ask_approval(...)`` for a human's yes or no, ``self.finish(result)`` and
  ``self.halted(result, halt)``.
- ``LlmStep`` and ``StepOptions``: one model call, its prompt, output model, tier and gate.
- ``PromptTemplate``: a versioned prompt (``system`` and ``user`` with ``{placeholders}``).
- ``StepResult``: a step's validated output, its disposition, confidence, model and cost.
- ``TetherResult``: the fields every workflow result carries (status, cost, steps).
- ``RunHalted``: raised by a step or an approval when the run must stop cleanly.
- ``ReviewDecision``: what a reviewer decided (``approve``, ``reject``, ``edit``, ``retry``).
- ``workflow``: Temporal's workflow module, for ``@workflow.defn`` and ``@workflow.run``.
"""

from __future__ import annotations

from temporalio import workflow

from policies.models import ModelTier
from policies.values import ConfidenceReport
from tether.contracts import PromptTemplate, ReviewDecision, StepStatus
from workflows.engine import TetherWorkflow
from workflows.steps import (
    HaltStatus,
    LlmStep,
    RunHalted,
    RunResultStatus,
    StepDisposition,
    StepOptions,
    StepResult,
    TetherResult,
)

__all__ = [
    "ConfidenceReport",
    "HaltStatus",
    "LlmStep",
    "ModelTier",
    "PromptTemplate",
    "ReviewDecision",
    "RunHalted",
    "RunResultStatus",
    "StepDisposition",
    "StepOptions",
    "StepResult",
    "StepStatus",
    "TetherResult",
    "TetherWorkflow",
    "workflow",
]
