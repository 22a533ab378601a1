"""The LLM step activity: prompt and repairs, the call log, scoring; ``LlmStepActivities`` runs them."""

from activities.llm_step.activity import LlmStepActivities
from activities.llm_step.call_log import CallLog
from activities.llm_step.prompting import (
    output_schema,
    parse_output,
    render_messages,
    resolve_output_model,
)
from activities.llm_step.scoring import JudgeVerdict, categorical_fields, concurrently

__all__ = [
    "CallLog",
    "JudgeVerdict",
    "LlmStepActivities",
    "categorical_fields",
    "concurrently",
    "output_schema",
    "parse_output",
    "render_messages",
    "resolve_output_model",
]
