"""Prompt-injection rules for delimiter attacks (chat-template tokens, fake role tags and headers,
fake end-of-input markers), output steering and exfiltration. See ``policies.injection_rules``.
"""

from __future__ import annotations

from policies.injection_rules import Rule, rule

__all__ = ["DELIMITER_RULES"]

DELIMITER_RULES: tuple[Rule, ...] = (
    rule(
        "fake_transcript",
        "delimiter",
        0.5,
        r"^\s*(?:assistant|ai|bot|system)\s*:[^\n]*\n(?:[^\n]*\n){0,5}?\s*(?:user|human|customer)\s*:",
        "user|human|customer",
        also="assistant:|ai:|bot:|system:|assistant :",
    ),
    # --- delimiter attacks ------------------------------------------------------------------
    rule(
        "chat_template_token",
        "delimiter",
        0.85,
        r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|"
        r"begin_of_text|end_of_text|eom_id|tool|ipython)\|>",
        "im_|endoftext|eot_id|_header_id|_of_text|eom_id|ipython|system|user|assistant|tool",
    ),
    rule(
        "inst_token",
        "delimiter",
        0.8,
        r"\[/?inst\]|<</?sys>>|<start_of_turn>|<end_of_turn>|\bhuman: .{0,200}\bassistant:",
        "inst]|sys>>|_of_turn>|assistant:",
    ),
    rule(
        "fake_role_tag",
        "delimiter",
        0.55,
        r"</?(?:system|assistant|developer|instructions?|tool_call|tool_result|function_call|function_result|human|ai|"
        r"prompt|system_prompt|admin|untrusted[_-]?(?:input|text|data)?|im_start|im_end)(?:\s[^>]{0,40})?>",
        "<",
    ),
    rule(
        "fake_user_close",
        "delimiter",
        0.35,
        r"</(?:user|document|context|ticket|input|data|email|message)>",
        "</",
    ),
    rule(
        "markdown_role_header",
        "delimiter",
        0.55,
        r"^\s*(?:#{2,}|\*\*|={2,}|-{3,}|\[)\s*(?:system|assistant|developer|admin|new instructions?|instructions?|"
        r"system (?:prompt|message|override|note|update))\b\s*(?:\]|\*\*)?\s*:?",
        "system|assistant|developer|admin|instruction",
        also="#|**|==|---|[",
    ),
    rule(
        "role_line",
        "delimiter",
        0.3,
        r"^\s*(?:system|assistant|developer|ai|bot)\s*:\s*\S",
        "system|assistant|developer|ai|bot",
        also=":",
    ),
    rule(
        "json_role",
        "delimiter",
        0.45,
        r"[\"']role[\"']\s*:\s*[\"'](?:system|assistant|developer|tool|function)[\"']",
        "role",
    ),
    rule(
        "fake_end_of_input",
        "delimiter",
        0.35,
        r"\bend of (?:the )?(?:user |customer )?(?:input|message|prompt|ticket|document|context|conversation|email)\b"
        r"|(?:-{3,}|={3,}|#{3,}|\*{3,})\s*end\b",
        "end",
        also="end of|---|===|###|***",
    ),
    rule(
        "begin_new_session",
        "delimiter",
        0.5,
        r"\b(?:begin|start|starting|beginning)(?: of)? (?:a )?(?:new |system |admin |developer |real )"
        r"(?:instructions?|prompt|message|session|conversation|task)",
        "begin|start",
        also="instruction|prompt|message|session|conversation|task",
    ),
    # --- output steering and exfiltration ---------------------------------------------------
    rule(
        "output_exactly",
        "steering",
        0.3,
        r"\b(?:respond|reply|answer|output|print|say|write|return|classify (?:this|it) as)\b (?:only |just |exactly |with |nothing but )*"
        r"(?:the (?:word|phrase|text|string|label) )?[\"'“][^\"'”\n]{1,40}[\"'”]",
        "respond|reply|answer|output|print|say|write|return|classify",
        also="\"|'|“",
    ),
    rule(
        "approve_automatically",
        "steering",
        0.3,
        r"\b(?:approve|grant|issue|process|authori[sz]e|escalate|refund)\b[^.\n]{0,30}\b(?:immediately|"
        r"automatically|without (?:review|checking|verification|asking|question))",
        "immediately|automatically|without review|without check|without verif|without ask",
        also="approv|grant|issue|process|authori|escalat|refund",
    ),
    rule(
        "self_grading",
        "steering",
        0.3,
        r"\b(?:mark|classify|label|set|score|rate) (?:this|the|my) (?:ticket|request|message|email|case|answer|"
        r"response)\b[^.\n]{0,20}\b(?:as|to|with)\b[^.\n]{0,15}\b(?:resolved|approved|safe|benign|not spam|10/10|"
        r"perfect|correct|5 stars|maximum|1\.0)",
        "this ticket|the ticket|my ticket|this request|this message|this email|this case|this answer|the answer|this response|the response",
        also="mark|classify|label|set |score|rate ",
    ),
    rule(
        "exfiltrate",
        "exfiltration",
        0.5,
        r"\b(?:send|post|forward|email|upload|exfiltrate|leak|transmit|include)\b[^.\n]{0,40}\b(?:conversation history|chat history|"
        r"system prompt|api keys?|credentials|secrets|all (?:user|customer) (?:data|records|emails)|other customers)\b"
        r"[^.\n]{0,40}\b(?:to|at|into|in)\b",
        "history|prompt|api key|credential|secret|customer",
        also="send|post|forward|email|upload|exfiltrate|leak|transmit|include",
    ),
    rule(
        "markdown_image_exfil",
        "exfiltration",
        0.5,
        r"!\[[^\]]{0,40}\]\(https?://[^)\s]{1,200}[?&][^)\s]*=",
        "](http",
    ),
)
"""Delimiter, steering and exfiltration rules, in the order they are reported."""
