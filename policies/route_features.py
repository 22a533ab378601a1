"""Routing features: what a step's rendered input looks like.

:func:`input_features` measures an input (size, language, code, questions, links, attachments)
with a few regular expressions and stopword lists, no dependency and no I/O. Every pattern stays
linear on hostile text (the input is user text). ``policies.route_rules`` chooses a tier from
these features.
"""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, ConfigDict

from policies.pricing import estimate_tokens

__all__ = [
    "UNDETERMINED",
    "RouteFeatures",
    "RouteRequest",
    "detect_language",
    "estimate_input_tokens",
    "input_features",
]

UNDETERMINED = "und"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteFeatures(_Frozen):
    """What routing knows about a step's input."""

    chars: int
    tokens: int
    language: str
    has_code: bool
    questions: int
    links: int
    attachments: int


class RouteRequest(_Frozen):
    """A step asking for a tier: its input's features and where it runs."""

    features: RouteFeatures
    tenant: str | None = None
    workflow: str | None = None
    step: str | None = None


# --- features ----------------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\bhttps?://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+", re.IGNORECASE)
_QUESTION = re.compile(r"[?\uff1f\u061f]+")  # also the full-width and Arabic ones
_WORD = re.compile(r"[^\W\d_]+")
_FILE_EXTENSIONS = frozenset(
    [
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "odt",
        "ods",
        "csv",
        "txt",
        "rtf",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "webp",
        "heic",
        "tif",
        "tiff",
        "zip",
        "rar",
        "7z",
        "eml",
        "msg",
        "log",
    ]
)
_PATH_TOKEN = re.compile(r"[\w.\-]+")
_EXTENSION = re.compile(
    r"\.(?:" + "|".join(sorted(_FILE_EXTENSIONS, key=len, reverse=True)) + r")(?![\w])",
    re.IGNORECASE,
)
"""A known extension after a dot: text without one names no file, and skips the token scan."""
_LANGUAGE_SAMPLE_CHARS = 1000
"""Language is told from the first this many characters of prose: plenty for stopwords and
scripts, and a 50 KB input costs no more than a short one."""
"""A run of name characters; a file name is one whose last dot precedes a known extension
(checked in Python, not by a backtracking pattern, so hostile text stays linear)."""
_ATTACHMENT_MARKER = re.compile(
    r"\[(?:attachment|attached|file|image|screenshot|photo)\b[^\[\]\n]{0,200}\]"
    r"|^[ \t]*(?:attachments?|attached)[ \t]*:.*$",
    re.IGNORECASE | re.MULTILINE,
)
_CODE_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    # (literals one of which the text must contain, pattern): a plain substring test (fast C
    # code) skips each pattern's scan of prose that cannot match it.
    (literals, re.compile(pattern, flags))
    for literals, pattern, flags in (
        (
            ("def",),
            r"^[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(.*\)[ \t]*(?:->.*)?:",
            re.MULTILINE,
        ),
        (("class",), r"^[ \t]*class[ \t]+\w+[ \t]*(?:\(.*\))?[ \t]*:[ \t]*$", re.MULTILINE),
        (
            ("import",),
            r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+)?import[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?"
            r"(?:[ \t]*,[ \t]*[\w.]+)*;?[ \t]*$",
            re.MULTILINE,
        ),
        (("function",), r"\bfunction\b[ \t]*\w*[ \t]*\([^)\n]*\)[ \t]*\{", 0),
        (("const", "let", "var"), r"\b(?:const|let|var)[ \t]+\w+[ \t]*=[^=]", 0),
        (("=>",), r"=>[ \t]*[{(]", 0),
        (("#include",), r"#include[ \t]*[<\"]", 0),
        (
            ("SELECT", "INSERT INTO", "SET", "DELETE FROM"),
            r"\bSELECT\b[^;\n]{0,200}\bFROM\b|\b(?:INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b",
            0,
        ),
        (
            ("public", "private", "protected", "static"),
            r"\b(?:public|private|protected|static)[ \t]+[\w<>\[\]]+[ \t]+\w+[ \t]*\(",
            0,
        ),
        (
            ("console.log(", "System.out.print", "printf(", "print("),
            r"\bconsole\.log\(|\bSystem\.out\.print|\bprintf\(|\bprint\(",
            0,
        ),
        (
            ("<",),
            r"<\?php|<(?:div|span|script|html|body|table|input)\b[^<>\n]{0,200}>",
            re.IGNORECASE,
        ),
        (
            ("Traceback", "at "),
            r"Traceback \(most recent call last\)|^[ \t]+at [\w.$<>]+\(.*:\d+\)",
            re.MULTILINE,
        ),
        (
            ("$",),
            r"^[ \t]*\$[ \t]+(?:sudo|git|npm|pip|curl|docker|kubectl|python3?|cd|ls)\b",
            re.MULTILINE,
        ),
        (("`",), r"`[^`\n]*[(){}=;][^`\n]*`", 0),
    )
]
_STATEMENT_END = re.compile(r"[;{}][ \t]*$", re.MULTILINE)

_STOPWORDS: dict[str, frozenset[str]] = {
    language: frozenset(words.split())
    for language, words in {
        "en": "the and is are was were of to it that this with for you my have has not be what "
        "how why can please would could do does on at from your we they an or but i",
        "de": "der die das und ist nicht ich ein eine einen mit zu auf für es sie wir den dem des "
        "von im wie was warum bitte kann können habe hat mein meine meinen auch noch aber oder "
        "sich wird werden bei nach hallo danke",
        "fr": "le la les et est je vous une un des du pour pas ne que qui dans sur avec mon ma mes "
        "ce cette il elle nous au aux mais ou comment pourquoi merci votre suis avez être bonjour",
        "es": "el la los las y es que en un una por para con no mi mis su del al lo como pero cómo "
        "qué porque gracias tengo estoy está hola muy este esta usted puedo se",
        "pt": "o os a as e é que um uma não para com em no na nos do da dos das de meu minha por "
        "mas como obrigado obrigada olá você vocês estou tenho está ao isso pelo pela",
        "it": "il lo la gli le e è che un una non per con di del della in mi mio mia ma come "
        "perché grazie sono ho ciao questo questa anche sul nel alla",
        "nl": "de het een en is niet ik je van dat die met voor op te mijn maar hoe wat waarom "
        "bedankt graag kan heb ben er ook zijn wij u bij naar nog geen",
    }.items()
}
_STOPWORD_LANGUAGES: dict[str, tuple[str, ...]] = {
    word: tuple(language for language, words in _STOPWORDS.items() if word in words)
    for word in frozenset().union(*_STOPWORDS.values())
}
_LETTER_HINTS: dict[str, str] = {"ß": "de", "ñ": "es", "¿": "es", "¡": "es", "ã": "pt", "õ": "pt"}

_SCRIPTS: dict[str, re.Pattern[str]] = {
    name: re.compile(f"[{letters}]+")
    for name, letters in {
        "latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
        "cyrillic": "\u0400-\u0481\u048a-\u04ff",
        "greek": "\u0386\u0388-\u03ff",
        "hebrew": "\u05d0-\u05ea",
        "arabic": "\u0621-\u064a\u0671-\u06d3",
        "devanagari": "\u0900-\u0963\u0971-\u097f",
        "thai": "\u0e01-\u0e3a\u0e40-\u0e4e",
        "hangul": "\u1100-\u11ff\u3131-\u318e\uac00-\ud7a3",
        "kana": "\u3041-\u3096\u30a1-\u30fa\u30fc",
        "han": "\u3400-\u4dbf\u4e00-\u9fff",
    }.items()
}
"""The letters of each script this module tells apart (runs of them, counted in C)."""
_SCRIPT_LANGUAGE = {
    "greek": "el",
    "hebrew": "he",
    "arabic": "ar",
    "devanagari": "hi",
    "thai": "th",
    "hangul": "ko",
    "han": "zh",
}
_UKRAINIAN_LETTERS = frozenset("іїєґІЇЄҐ")
_ONE_TOKEN_SCRIPTS = frozenset({"hangul", "kana", "han"})


def _letters(pattern: re.Pattern[str], text: str) -> int:
    return sum(map(len, pattern.findall(text)))


def _scripts(text: str) -> Counter[str]:
    """Letters per script; ASCII text is all Latin and skips the other scans."""
    names = ["latin"] if text.isascii() else list(_SCRIPTS)
    counts = Counter({name: _letters(_SCRIPTS[name], text) for name in names})
    return +counts  # drops the zeros


def _has_link(text: str) -> bool:
    lowered = text.lower()
    return "http" in lowered or "www." in lowered


def _prose(text: str) -> str:
    """The text without code blocks and links, for language and question detection."""
    if "```" in text or "~~~" in text:
        text = _FENCE.sub(" ", text)
    return _LINK.sub(" ", text) if _has_link(text) else text


def detect_language(text: str) -> str:
    """The input's language: ``en de fr es pt it nl`` by stopwords, a non-Latin script's
    language (``ru uk el he ar hi th ko ja zh``) by its letters, else ``und``."""
    return _prose_language(_prose(text))


def _prose_language(prose: str) -> str:
    prose = prose[:_LANGUAGE_SAMPLE_CHARS]
    scripts = _scripts(prose)
    if not scripts:
        return UNDETERMINED
    script, letters = scripts.most_common(1)[0]
    if script in {"han", "kana"} and scripts["kana"] > 0:
        return "ja"  # Japanese mixes kanji (han) with kana; Chinese has no kana
    if script == "cyrillic":
        return "uk" if any(char in _UKRAINIAN_LETTERS for char in prose) else "ru"
    if script != "latin":
        return _SCRIPT_LANGUAGE.get(script, UNDETERMINED) if letters else UNDETERMINED
    return _latin_language(prose)


def _latin_language(prose: str) -> str:
    lowered = prose.lower()
    scores = dict.fromkeys(_STOPWORDS, 0)
    for word in _WORD.findall(lowered):
        for language in _STOPWORD_LANGUAGES.get(word, ()):
            scores[language] += 1
    for letter, language in _LETTER_HINTS.items():
        if letter in lowered:
            scores[language] += 2
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, best_score), (_, runner_up) = ranked[0], ranked[1]
    if best_score < 2 or best_score == runner_up:
        return UNDETERMINED
    return best


def estimate_input_tokens(text: str) -> int:
    """Tokens of ``text``: one per CJK character, about four characters each for the rest."""
    one_token = 0
    if not text.isascii():
        one_token = sum(_letters(_SCRIPTS[name], text) for name in _ONE_TOKEN_SCRIPTS)
    return one_token + estimate_tokens(len(text) - one_token)


def _has_code(text: str) -> bool:
    if ("```" in text or "~~~" in text) and _FENCE.search(text) is not None:
        return True
    for literals, pattern in _CODE_PATTERNS:
        if any(literal in text for literal in literals) and pattern.search(text):
            return True
    return len(_STATEMENT_END.findall(text)) >= 3


def _file_names(text: str) -> set[str]:
    names: set[str] = set()
    if _EXTENSION.search(text) is None:
        return names
    for token in _PATH_TOKEN.findall(text):
        stem, dot, extension = token.strip(".-").rpartition(".")
        if dot and stem and extension.lower() in _FILE_EXTENSIONS:
            names.add(token.strip(".-").lower())
    return names


def _attachments(text: str) -> int:
    if _has_link(text):
        text = _LINK.sub(" ", text)
    bare_markers = sum(1 for marker in _ATTACHMENT_MARKER.findall(text) if not _file_names(marker))
    return len(_file_names(text)) + bare_markers


def input_features(text: str, attachments: int = 0) -> RouteFeatures:
    """Measures a step's rendered input.

    Args:
        text: The input as the model would see it.
        attachments: Attachments the step carries besides the text (files passed by reference);
            added to the ones the text mentions (file names, ``[screenshot]``, ``Attachments:``).
    """
    if attachments < 0:
        raise ValueError(f"attachments must be >= 0, got {attachments}")
    prose = _prose(text)
    return RouteFeatures(
        chars=len(text),
        tokens=estimate_input_tokens(text),
        language=_prose_language(prose),
        has_code=_has_code(text),
        questions=len(_QUESTION.findall(prose)),
        links=len(_LINK.findall(text)) if _has_link(text) else 0,
        attachments=attachments + _attachments(text),
    )
