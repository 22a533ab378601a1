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
"""A run of name characters; a file name is one whose last dot precedes a known extension
(checked in Python, not by a backtracking pattern, so hostile text stays linear)."""
_ATTACHMENT_MARKER = re.compile(
    r"\[(?:attachment|attached|file|image|screenshot|photo)\b[^\[\]\n]{0,200}\]"
    r"|^[ \t]*(?:attachments?|attached)[ \t]*:.*$",
    re.IGNORECASE | re.MULTILINE,
)
_CODE_PATTERNS = [
    re.compile(pattern, flags)
    for pattern, flags in (
        (r"^[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(.*\)[ \t]*(?:->.*)?:", re.MULTILINE),
        (r"^[ \t]*class[ \t]+\w+[ \t]*(?:\(.*\))?[ \t]*:[ \t]*$", re.MULTILINE),
        (
            r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+)?import[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?"
            r"(?:[ \t]*,[ \t]*[\w.]+)*;?[ \t]*$",
            re.MULTILINE,
        ),
        (r"\bfunction\b[ \t]*\w*[ \t]*\([^)\n]*\)[ \t]*\{", 0),
        (r"\b(?:const|let|var)[ \t]+\w+[ \t]*=[^=]", 0),
        (r"=>[ \t]*[{(]", 0),
        (r"#include[ \t]*[<\"]", 0),
        (r"\bSELECT\b[^;\n]{0,200}\bFROM\b|\b(?:INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b", 0),
        (r"\b(?:public|private|protected|static)[ \t]+[\w<>\[\]]+[ \t]+\w+[ \t]*\(", 0),
        (r"\bconsole\.log\(|\bSystem\.out\.print|\bprintf\(|\bprint\(", 0),
        (r"<\?php|<(?:div|span|script|html|body|table|input)\b[^<>\n]{0,200}>", re.IGNORECASE),
        (r"Traceback \(most recent call last\)|^[ \t]+at [\w.$<>]+\(.*:\d+\)", re.MULTILINE),
        (r"^[ \t]*\$[ \t]+(?:sudo|git|npm|pip|curl|docker|kubectl|python3?|cd|ls)\b", re.MULTILINE),
        (r"`[^`\n]*[(){}=;][^`\n]*`", 0),
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


def _prose(text: str) -> str:
    """The text without code blocks and links, for language and question detection."""
    return _LINK.sub(" ", _FENCE.sub(" ", text))


def detect_language(text: str) -> str:
    """The input's language: ``en de fr es pt it nl`` by stopwords, a non-Latin script's
    language (``ru uk el he ar hi th ko ja zh``) by its letters, else ``und``."""
    prose = _prose(text)
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
    scores = Counter({language: 0 for language in _STOPWORDS})
    for word, times in Counter(_WORD.findall(prose.lower())).items():
        for language in _STOPWORD_LANGUAGES.get(word, ()):
            scores[language] += times
    lowered = prose.lower()
    for letter, language in _LETTER_HINTS.items():
        if letter in lowered:
            scores[language] += 2
    ranked = scores.most_common(2)
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
    if _FENCE.search(text) is not None:
        return True
    if any(pattern.search(text) for pattern in _CODE_PATTERNS):
        return True
    return len(_STATEMENT_END.findall(text)) >= 3


def _file_names(text: str) -> set[str]:
    names = set()
    for token in _PATH_TOKEN.findall(text):
        stem, dot, extension = token.strip(".-").rpartition(".")
        if dot and stem and extension.lower() in _FILE_EXTENSIONS:
            names.add(token.strip(".-").lower())
    return names


def _attachments(text: str) -> int:
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
    return RouteFeatures(
        chars=len(text),
        tokens=estimate_input_tokens(text),
        language=detect_language(text),
        has_code=_has_code(text),
        questions=len(_QUESTION.findall(_prose(text))),
        links=len(_LINK.findall(text)),
        attachments=attachments + _attachments(text),
    )
