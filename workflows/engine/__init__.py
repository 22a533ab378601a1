"""The workflow engine: ``TetherWorkflow`` and the parts it is built from, one concern each.

``lifecycle`` (begin/finish, ``status`` query, ``decide`` update) <- ``review_gate`` (review and
its timers, ``ask_approval``) <- ``budget`` (over-budget actions) <- ``route`` (the model route
and its fallback) <- ``pre_patch`` (paths old histories still take) <- ``runner`` (``llm_step``).
"""

from workflows.engine.runner import TetherWorkflow

__all__ = ["TetherWorkflow"]
