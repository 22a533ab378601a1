"""The prompt-injection rules: patterns over normalised text, each with a category and a weight.

Text is normalised before matching (``policies.injection.normalise``): NFKD with combining marks
dropped (so ``instruções`` is matched as ``instrucoes`` and ``действуй`` as ``деиствуи``), zero-width
characters removed, lower case, whitespace collapsed. Every rule has anchors: plain substrings of
which one must occur before its regex is run, which keeps a clean ticket's scan cheap.

Weights say how much a single hit proves: close to 1 for things no customer writes (chat-template
tokens), about 0.5-0.75 for explicit override, persona and extraction phrasing, and low (0.2-0.45)
for phrasing that benign tickets also use (a pasted ``System:`` line, "jailbroken phone"), which
only counts together with another signal.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import ahocorasick

__all__ = ["ENGLISH_RULES", "Rule", "override_rule", "rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    category: str
    """override, persona, extraction, delimiter, steering or exfiltration."""
    weight: float
    pattern: re.Pattern[str]
    anchors: tuple[str, ...]
    """Plain substrings, one of which must occur before the regex runs (a cheap pre-filter)."""
    latin: bool = True
    """Written for Latin-script text: also run on the homoglyph-folded and rot13 variants."""
    also: tuple[str, ...] = ()
    """A second set of anchors, one of which must occur too (when not empty)."""
    spaced: tuple[str, ...] = ()
    """Anchors containing a space (``anchors`` and ``also`` hold none): looked up in the text."""
    also_spaced: tuple[str, ...] = ()

    word_start: bool = False
    """The pattern had a leading ``\\b``, checked here instead: a regex that starts with a
    literal or an alternation of literals lets the engine skip ahead, one starting with ``\\b``
    does not (about 20x slower on a clean 4 KB ticket)."""

    def search(self, text: str) -> re.Match[str] | None:
        """The rule's first match in ``text`` (normalised), or None."""
        return self.search_with(text, anchors_present((self,), text))

    def search_with(self, text: str, present: frozenset[str]) -> re.Match[str] | None:
        """Like :meth:`search`, with the anchors that occur in the text already known (see
        :func:`anchors_present`): a scan of many rules looks each anchor up once."""
        if present.isdisjoint(self.anchors) and present.isdisjoint(self.spaced):
            return None
        if (
            (self.also or self.also_spaced)
            and present.isdisjoint(self.also)
            and present.isdisjoint(self.also_spaced)
        ):
            return None
        match = self.pattern.search(text)
        while match is not None and self.word_start and _inside_word(text, match.start()):
            match = self.pattern.search(text, match.start() + 1)
        return match


def anchors_present(rules: tuple[Rule, ...], text: str) -> frozenset[str]:
    """The anchors of ``rules`` that occur in ``text``: one Aho-Corasick pass over the text
    (pyahocorasick, in C) instead of a substring search per anchor, about 12x faster on a
    2.5 KB ticket against ~360 anchors."""
    return frozenset(anchor for _, anchor in _automaton(rules).iter(text))


@functools.lru_cache(maxsize=16)
def _automaton(rules: tuple[Rule, ...]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for rule in rules:
        for anchor in (*rule.anchors, *rule.also, *rule.spaced, *rule.also_spaced):
            automaton.add_word(anchor, anchor)
    automaton.make_automaton()
    return automaton


def split_anchors(anchors: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``a|b c|d`` -> (anchors without whitespace, anchors with whitespace)."""
    parts = [anchor for anchor in anchors.split("|") if anchor]
    return tuple(a for a in parts if " " not in a), tuple(a for a in parts if " " in a)


def _inside_word(text: str, start: int) -> bool:
    return (
        start > 0
        and (text[start - 1].isalnum() or text[start - 1] == "_")
        and (text[start].isalnum() or text[start] == "_")
    )


def _compile(pattern: str, flags: int = 0) -> tuple[re.Pattern[str], bool]:
    if pattern.startswith(r"\b"):
        return re.compile(pattern[2:], flags), True
    return re.compile(pattern, flags), False


_GAP = r"[^.\n!?;。]{0,%d}?"


def _alt(words: str) -> str:
    return "(?:" + words + ")"


def override_rule(lang: str, verbs: str, qualifiers: str, nouns: str, anchors: str) -> Rule:
    """verb ... qualifier ... noun, or verb ... noun ... qualifier, within one sentence."""
    v, q, n = _alt(verbs), _alt(qualifiers), _alt(nouns)
    body = rf"\b{v}\w*\b{_GAP % 40}(?:\b{q}\w*{_GAP % 25}\b{n}|\b{n}\w*{_GAP % 25}\b{q})"
    also = "|".join(word.replace("s?", "").replace("?", "") for word in nouns.split("|"))
    compiled, word_start = _compile(body)
    return _make(
        f"override_{lang}", "override", 0.75, compiled, anchors, lang != "ru", also, word_start
    )


def rule(
    name: str,
    category: str,
    weight: float,
    pattern: str,
    anchors: str,
    *,
    latin: bool = True,
    also: str = "",
) -> Rule:
    """``anchors`` and ``also`` are ``|``-separated substrings (see ``Rule``)."""
    compiled, word_start = _compile(pattern, re.MULTILINE)
    return _make(name, category, weight, compiled, anchors, latin, also, word_start)


def _make(
    name: str,
    category: str,
    weight: float,
    compiled: re.Pattern[str],
    anchors: str,
    latin: bool,
    also: str,
    word_start: bool,
) -> Rule:
    plain, spaced = split_anchors(anchors)
    also_plain, also_spaced = split_anchors(also)
    return Rule(
        name,
        category,
        weight,
        compiled,
        plain,
        latin=latin,
        also=also_plain,
        spaced=spaced,
        also_spaced=also_spaced,
        word_start=word_start,
    )


_EXTRACT_VERBS = (
    r"repeat|print|show|reveal|display|output|tell|give|share|write|list|dump|leak|expose|"
    r"disclose|recite|return|paste|spell out|summari[sz]e|translate|what(?:'s| is| are| were| was)"
)
_SECRET_ADJ = r"full|entire|exact|complete|original|initial|hidden|secret|internal|system|developer|previous|verbatim|first"
_NOT_A_HOWTO = r"(?!\s+(?:for|on|about|regarding|to|of how)\b)"

ENGLISH_RULES: tuple[Rule, ...] = (
    # --- instruction override -------------------------------------------------------------
    override_rule(
        "en",
        r"ignore|disregard|forget|skip|overlook|bypass|override|neglect|drop|abandon|discard",
        r"previous|prior|above|earlier|preceding|foregoing|former|all|your|system|initial|original|existing|old",
        r"instructions?|prompts?|rules|directions|directives|guidelines|commands|guardrails|constraints|programming|context",
        "ignor|disregard|forget|skip|overlook|bypass|overrid|neglect|drop|abandon|discard",
    ),
    rule(
        "disregard_above",
        "override",
        0.45,
        r"\b(?:disregard|ignore|forget)\b (?:all |everything |anything )?(?:of )?(?:the |what(?:'s| is| was)? )?"
        r"(?:above|before this|written above|said before)\b",
        "disregard|ignore|forget",
    ),
    rule(
        "what_you_were_told",
        "override",
        0.6,
        r"\b(?:forget|ignore|disregard)\b[^.\n]{0,20}\b(?:you (?:were|have been|'ve been) (?:told|given|programmed|instructed))",
        "told|given|programmed|instructed",
        also="forget|ignore|disregard",
    ),
    rule(
        "new_instructions",
        "override",
        0.55,
        r"\b(?:new|updated|revised|real|actual|true|secret|hidden|important|additional|override|priority|admin|system)"
        r" (?:system )?(?:instructions?|directives?|orders|task|rules|prompt)\s*[:\-=]",
        "instruction|directive|orders|task|rules|prompt",
        also=":|-|=",
    ),
    rule(
        "from_now_on",
        "override",
        0.5,
        r"\bfrom now on,? (?:you|your|the (?:assistant|ai|model|bot)|respond|answer|reply|always|only|ignore|never)",
        "from now on",
    ),
    rule(
        "do_not_follow",
        "override",
        0.6,
        r"\b(?:do not|don't|dont|stop|no longer|never) (?:follow|obey|adhere to|comply with|apply|listen to)(?:ing)?\b"
        r"[^.\n]{0,25}\b(?:instructions|rules|guidelines|policies|prompt|programming|system)",
        "follow|obey|adhere|comply|apply|listen",
        also="instructions|rules|guidelines|policies|prompt|programming|system",
    ),
    rule(
        "bypass_safety",
        "override",
        0.6,
        r"\b(?:bypass|disable|turn off|switch off|deactivate|circumvent|ignore|override|remove|lift|evade)\s+"
        r"(?:all\s+|any\s+|of\s+|the\s+)*(?:your\s+|its\s+)(?:\w+\s+)?(?:filters?|guardrails?|restrictions?|"
        r"safeguards?|censorship|guidelines|safety|limitations|content polic\w+|alignment)",
        "bypass|disable|turn off|switch off|deactivat|circumvent|ignor|overrid|remov|lift|evade",
        also="filter|guardrail|restriction|safeguard|censorship|guidelines|safety|limitation|content polic|alignment",
    ),
    rule(
        "bypass_safety_generic",
        "override",
        0.6,
        r"\b(?:bypass|disable|turn off|deactivate|circumvent|override|evade)\s+(?:all\s+|any\s+|the\s+)*"
        r"(?:safety|content|moderation|ethical|security)\s+(?:filters?|guardrails?|restrictions?|polic\w+|checks?|guidelines)",
        "bypass|disable|turn off|deactivat|circumvent|overrid|evade",
        also="filter|guardrail|restriction|polic|check|guidelines",
    ),
    rule(
        "addresses_the_model",
        "override",
        0.5,
        r"\b(?:if you are|you are|to|attention|note to|message to|dear|hey|hello) (?:an? |the )?(?:ai|llm|language model|"
        r"ai assistant|chatbot|gpt|assistant|model|automated system|bot)\b (?:reading|processing|reviewing|summari[sz]ing|"
        r"triaging|analy[sz]ing|handling|that reads|who reads|in charge)",
        "reading|processing|reviewing|summari|triaging|analy|handling|that reads|who reads|in charge",
        also="ai|llm|model|gpt|bot|assistant|automated system",
    ),
    rule(
        "model_label_colon",
        "override",
        0.35,
        r"(?:^|\n)\s*(?:note to (?:the )?(?:ai|llm|model|assistant|bot)|(?:ai|llm|gpt|chatgpt|claude|assistant) "
        r"(?:instructions?|note))\s*:",
        "note|instruction",
        also=":",
    ),
    # --- role play / persona switch ---------------------------------------------------------
    rule(
        "you_are_now",
        "persona",
        0.55,
        r"\b(?:you are|you're|youre) now\b(?! (?:able|ready|available|subscribed|registered|connected|enrolled|"
        r"signed|logged|eligible|on |off |out |all set|set up|a (?:premium|gold|vip|valued|verified)))",
        "you are now|you're now|youre now",
    ),
    rule(
        "act_as",
        "persona",
        0.6,
        r"\b(?:act|behave|respond|speak|answer|function|operate|reply) (?:as|like) (?:if you (?:were|are) )?(?:an? |the |my )?"
        r"(?:system|admin(?:istrator)?|developer|root|superuser|unrestricted|unfiltered|uncensored|jailbroken|evil|dan\b|"
        r"different (?:ai|assistant|model)|(?:ai|assistant|model|chatbot) (?:without|with no|that has no)|hacker|linux terminal|"
        r"terminal|sudo|god)",
        "act as|act like|behave as|behave like|respond as|respond like|speak as|answer as|function as|operate as|reply as|reply like",
        also="system|admin|developer|root|superuser|unrestricted|unfiltered|uncensored|jailbr|evil|dan|different|without|with no|has no|hacker|terminal|sudo|god",
    ),
    rule(
        "pretend",
        "persona",
        0.55,
        r"\b(?:pretend|imagine|suppose|assume) (?:that )?(?:you are|you're|to be|you have|you were) (?:an? |the )?"
        r"(?:ai|assistant|model|system|admin|developer|unrestricted|unfiltered|uncensored|jailbroken|no (?:rules|restrictions|"
        r"limits|filters|guidelines)|evil|free (?:from|of)|different|dan\b|not bound)",
        "pretend|imagine|suppose|assume",
        also="you are|you're|to be|you have|you were",
    ),
    rule(
        "do_anything_now",
        "persona",
        0.7,
        r"\bdo anything now\b|\bdan mode\b|\b(?:as|are|called|named) dan\b[^.\n]{0,40}\b(?:mode|anything|rules|restrictions)"
        r"|\bstay in character\b",
        "anything now|dan|in character",
    ),
    rule(
        "mode_switch",
        "persona",
        0.6,
        r"\b(?:god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|dan|evil)[ -]mode\b",
        "mode",
        also="god|jailbr|unrestricted|unfiltered|uncensored|dan|evil",
    ),
    rule(
        "developer_mode",
        "persona",
        0.35,
        r"\b(?:enable|activate|enter|switch to|turn on|you are in|now in)\b[^.\n]{0,15}\b(?:developer|admin|debug|maintenance|sudo) mode\b",
        "developer mode|admin mode|debug mode|maintenance mode|sudo mode",
    ),
    rule("jailbreak_word", "persona", 0.35, r"\bjailbr(?:eak|oken|eaking)\b", "jailbr"),
    rule(
        "no_restrictions",
        "persona",
        0.5,
        r"\b(?:you have|you've got|you have got|with|there are|you are under|you're under|you are bound by|you follow)"
        r" no (?:restrictions|rules|limits|limitations|filters|guidelines|boundaries|censorship|ethical|moral)"
        r"|\bwithout (?:any )?(?:restrictions|filters|censorship|guidelines|ethical|moral)\b[^.\n]{0,20}\b(?:you|answer|respond|reply)",
        "restrictions|rules|limits|limitations|filters|guidelines|boundaries|censorship|ethical|moral",
        also="no |without",
    ),
    rule(
        "roleplay",
        "persona",
        0.4,
        r"\brole-?play(?:ing)? as\b|\blet'?s play a game\b|\bplay the role of (?:an? |the )?(?:ai|assistant|system|admin|developer|hacker)",
        "role|game",
        also="roleplay|role-play|role play|play a game|play the role",
    ),
    rule(
        "unrestricted_persona",
        "persona",
        0.55,
        r"\byou are (?:an? |the )?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|amoral)\b"
        r"|\b(?:never|don't ever|do not ever) (?:refuses?|says? no|declines?)\b",
        "unrestricted|unfiltered|uncensored|jailbroken|evil|amoral|refuse|say no|says no|decline",
        also="you are|never|ever",
    ),
    # --- system-prompt extraction -----------------------------------------------------------
    rule(
        "reveal_your_prompt",
        "extraction",
        0.6,
        rf"\b(?:{_EXTRACT_VERBS})\b[^.\n?]{{0,25}}?\byour\s+(?:(?:{_SECRET_ADJ})\s+){{0,3}}(?:prompt|instructions|"
        rf"directives|rules|guidelines|configuration|pre-?prompt|initial message|system message){_NOT_A_HOWTO}",
        "prompt|instructions|directives|rules|guidelines|configuration|initial message|system message",
        also="your",
    ),
    rule(
        "reveal_the_hidden",
        "extraction",
        0.6,
        rf"\b(?:{_EXTRACT_VERBS})\b[^.\n?]{{0,25}}?\b(?:the|all|any)\s+(?:(?:{_SECRET_ADJ})\s+){{0,2}}"
        r"(?:hidden|secret|internal|system|developer|initial|original)\s+(?:prompt|instructions|directives|message|guidelines)",
        "prompt|instruction|directive|message|guideline",
        also="hidden|secret|internal|system|developer|initial|original",
    ),
    rule(
        "your_system_prompt",
        "extraction",
        0.45,
        r"\byour (?:own )?(?:system|hidden|secret|initial|original|internal|developer|full) (?:prompt|instructions|message|rules)\b",
        "prompt|instructions|message|rules",
        also="your",
    ),
    rule(
        "repeat_above",
        "extraction",
        0.55,
        r"\b(?:repeat|print|output|copy|echo|write out|reproduce)\b[^.\n]{0,25}\b(?:text|words|everything|all|content|lines?)\b"
        r"[^.\n]{0,12}\b(?:above|before this|so far|verbatim|preceding)|\bstarting with [\"'“]?you are\b",
        "above|before this|so far|verbatim|preceding|starting with",
        also="repeat|print|output|copy|echo|write out|reproduce|starting with",
    ),
    rule(
        "initial_context",
        "extraction",
        0.3,
        r"\b(?:beginning|start|top) of (?:the|this|our|your) (?:conversation|chat|prompt|context)",
        "beginning of|start of|top of",
    ),
)
"""The English rules, in the order they are reported."""
