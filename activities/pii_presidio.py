"""The PII detectors a policy chooses, with Presidio's pattern recognizers as an optional extra.

``pii_detectors(settings)`` gives the detectors to pass to ``policies.pii.Redactor`` beside the
built-in ones: every place that redacts (a run's start in the client, a step's prompt and answer,
stored documents, a reviewer's text) takes them from here (``tether.store.run_pii``'s functions
require them), so they all find the same kinds.

Presidio (``pip install 'tether[presidio]'``) runs only its pattern recognizers (regex plus
checksums and context words: US passport and driver licence, UK NHS, crypto wallets, ...) over a
blank spaCy tokenizer. Its default NLP engine wants the spaCy model ``en_core_web_lg``, which
is published on GitHub, not PyPI; with no model there is no named-entity recognition (PERSON,
LOCATION), and nothing is downloaded at run time. Token texts stand in for lemmas, so context
words such as "passport" still raise a weak pattern's score.

Importing Presidio loads spaCy (seconds): the analyzer is built once per process, on first use,
for each (entities, language), and shared by threads.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from collections.abc import Iterator, Sequence
from typing import Any, cast

from policies.guard_settings import PRESIDIO_EXTRA_MISSING, PiiGuardSettings, presidio_installed
from policies.pii import PiiDetector, PiiMatch
from tether.core.errors import ConfigurationError

__all__ = ["PRESIDIO_PRIORITY", "PresidioDetector", "pii_detectors"]

PRESIDIO_PRIORITY = 45
"""Beats phone numbers (60) on a shared span; the built-in checksummed kinds (0-40) beat it."""

_lock = threading.Lock()


class PresidioDetector:
    """A ``PiiDetector`` over a Presidio ``AnalyzerEngine``: each hit's entity is its kind."""

    def __init__(self, analyzer: Any, entities: frozenset[str], language: str, threshold: float):
        self._analyzer, self._language, self._threshold = analyzer, language, threshold
        self._entities = sorted(entities)
        self.kinds = entities

    def detect(self, text: str) -> Iterator[PiiMatch]:
        hits = self._analyzer.analyze(
            text,
            language=self._language,
            entities=self._entities,
            score_threshold=self._threshold,
        )
        for hit in hits:
            value = text[hit.start : hit.end]
            yield PiiMatch(hit.entity_type, hit.start, hit.end, value, PRESIDIO_PRIORITY)


def pii_detectors(settings: PiiGuardSettings) -> tuple[PiiDetector, ...]:
    """The detectors ``settings.detectors`` adds to the built-in ones (none for ``builtin``)."""
    if not settings.enabled or "presidio" not in settings.detectors:
        return ()
    presidio = settings.presidio
    analyzer = _analyzer(presidio.entities, presidio.language)
    return (
        PresidioDetector(analyzer, presidio.entities, presidio.language, presidio.score_threshold),
    )


def _analyzer(entities: frozenset[str], language: str) -> Any:
    with _lock:
        return _build_analyzer(entities, language)


@functools.cache
def _build_analyzer(entities: frozenset[str], language: str) -> Any:
    if not presidio_installed():
        raise ConfigurationError(PRESIDIO_EXTRA_MISSING)
    import spacy
    from presidio_analyzer import AnalyzerEngine, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SlimSpacyNlpEngine

    class _BlankTokenizer(SlimSpacyNlpEngine):
        """spaCy's rule tokenizer for the language, token texts as lemmas; loads no model."""

        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": language, "model_name": "blank"}])
            self.auto_download = False

        def load(self) -> None:
            self.nlp = cast(Any, {language: spacy.blank(language)})

        def process_text(self, text: str, language: str) -> Any:
            doc = cast(Any, self.nlp)[language](text)
            for token in doc:
                token.lemma_ = token.lower_
            return self._doc_to_nlp_artifact(doc, language)

    engine = _BlankTokenizer()
    engine.load()
    registry = RecognizerRegistry(supported_languages=[language])
    found: set[str] = set()
    for recognizer_class in _pattern_recognizers(PatternRecognizer):
        recognizer = recognizer_class(supported_language=language)
        wanted = entities & set(recognizer.supported_entities)
        if wanted:
            registry.add_recognizer(recognizer)
            found |= wanted
    missing = sorted(entities - found)
    if missing:
        raise ConfigurationError(
            f"pii.presidio.entities: Presidio has no pattern recognizer for {', '.join(missing)} "
            f"in language {language!r}"
        )
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[language])


def _pattern_recognizers(base: type) -> Sequence[type]:
    """Presidio's predefined pattern recognizers that can be built for any language."""
    module = importlib.import_module("presidio_analyzer.predefined_recognizers")
    found = []
    for name in sorted(dir(module)):
        candidate = getattr(module, name)
        if (
            inspect.isclass(candidate)
            and issubclass(candidate, base)
            and candidate is not base
            and "supported_language" in inspect.signature(candidate).parameters
        ):
            found.append(candidate)
    return found
