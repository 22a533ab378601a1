"""The step cache as the LLM step uses it: look an answer up before calling a model, keep a
valid answer after, and the learned routing rule fed by reviewers' verdicts on cached answers.

The entries live in the store (``tether.store.cache``), so every worker shares them; each worker
keeps an in-process :class:`VectorIndex` per partition for the semantic lookup, caught up with
the store's newer rows on every lookup. A candidate the index finds is read back from the store
before it is served, so an answer another worker evicted is never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from activities.cache_index import VectorIndex
from activities.deps import ActivityDeps
from activities.embeddings import (
    EmbeddingCalls,
)
from activities.input_embeddings import InputEmbeddings
from activities.providers.base import ChatMessage
from policies.cache_settings import CachePolicy
from policies.route_features import RouteRequest
from policies.route_rules import LearnedRule, LearnedVerdict
from tether.contracts import LlmStepInput
from tether.store.cache import (
    CacheEntry,
    doubt_entry,
    entries_by_id,
    exact_entry,
    insert_entry,
    live_vectors_since,
    mark_verified,
    route_scope,
    scope_digest,
    verdict_vectors,
)

__all__ = ["CacheHit", "CacheKey", "StepCache"]

log = logging.getLogger(__name__)

_CANDIDATES = 5
_PENDING_VECTORS = 1_024


@dataclass(frozen=True)
class CacheKey:
    """Where a step's answer is cached and what its input is."""

    partition: str
    route_scope: str
    input_digest: str
    input_text: str
    prompt_version: str
    model: str


@dataclass(frozen=True)
class CacheHit:
    entry: CacheEntry
    kind: str
    """``exact_hit`` or ``semantic_hit``."""
    similarity: float


_IDENTIFIER = re.compile(r"\S*\d\S*")
_PLACEHOLDER = re.compile(r"^\W*[\[\u27e6][A-Z_]+_\d+[\]\u27e7]\W*$")


def identifiers(text: str) -> str:
    """The input's specific values: every token holding a digit (order and invoice ids,
    amounts, dates, error codes), PII placeholders aside (they are per run, restored per run),
    sorted and joined. Two inputs share cached answers only when these are equal."""
    found = {
        token.strip(".,;:!?()\"'")
        for token in _IDENTIFIER.findall(text)
        if not _PLACEHOLDER.match(token)
    }
    return " ".join(sorted(found))


def input_text(variables: dict[str, str]) -> str:
    """What a step's input means, for the embedder: its variables' values, in name order."""
    return "\n".join(variables[name] for name in sorted(variables))


MAX_INDEXES = 256
"""Partitions (tenant, workflow, step, prompt version, model) whose vector index a worker keeps,
the least recently asked dropped first (it is rebuilt from the store when asked again), so a
worker's memory stays bounded however many partitions come and go."""


class StepCache:
    """One worker's view of the shared cache (built once per worker, with its activities)."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps
        self.policy: CachePolicy = deps.policy.cache
        self.embeddings = InputEmbeddings(deps)
        self._indexes: OrderedDict[tuple[str, str], VectorIndex] = OrderedDict()
        # Embeddings of inputs looked up and not yet stored (a miss is stored once answered).
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    # --- keys ---------------------------------------------------------------------------

    def key_for(
        self,
        inp: LlmStepInput,
        model: str,
        messages: list[ChatMessage],
        variables: dict[str, str],
    ) -> CacheKey | None:
        """The step's cache key; None when it must not be cached: the cache is off, the step is
        side-effecting, a reviewer's feedback is in the prompt, or the input is over the limit."""
        if not self.policy.enabled or inp.side_effecting or inp.feedback:
            return None
        if sum(len(m.content) for m in messages) > self.policy.max_input_chars:
            return None
        version = f"{inp.prompt.id}@{inp.prompt.version}"
        rendered = json.dumps([[m.role, m.content] for m in messages], separators=(",", ":"))
        text = input_text(variables)
        return CacheKey(
            # The input's identifiers are part of the partition: a paraphrase about another
            # order, invoice or amount is never a semantic hit (its embedding is nearly the same).
            partition=scope_digest(
                "cache", inp.tenant, inp.workflow, inp.step, version, model, identifiers(text)
            ),
            route_scope=route_scope(inp.tenant, inp.workflow, inp.step),
            input_digest="sha256:" + hashlib.sha256(rendered.encode()).hexdigest(),
            input_text=text,
            prompt_version=version,
            model=model,
        )

    # --- lookup and store ---------------------------------------------------------------

    async def lookup(self, key: CacheKey, calls: EmbeddingCalls | None = None) -> CacheHit | None:
        """An exact hit, else a semantic one (an approved answer first, then the most similar).
        A cache must never fail the step: a store error is a miss. ``calls`` records a billed
        embedding of the input."""
        try:
            return await self._lookup(key, calls)
        except SQLAlchemyError as exc:
            log.warning("cache lookup failed, treated as a miss: %s", type(exc).__name__)
            return None

    async def _lookup(self, key: CacheKey, calls: EmbeddingCalls | None) -> CacheHit | None:
        entry = await self.deps.in_session(
            lambda session: exact_entry(session, key.partition, key.input_digest)
        )
        if entry is not None:
            return CacheHit(entry=entry, kind="exact_hit", similarity=1.0)
        vector = await self.embeddings.vector(key.input_text, calls)
        embedder = self.embeddings.embedder()
        if vector is None or embedder is None:
            return None
        self._vectors[(key.partition, key.input_digest)] = vector
        while len(self._vectors) > _PENDING_VECTORS:
            self._vectors.popitem(last=False)
        index = self._index_for((key.partition, embedder.name), len(vector))
        after = index.last_id
        fresh = await self.deps.in_session(
            lambda session: live_vectors_since(session, key.partition, embedder.name, after)
        )
        if fresh:
            index.add(
                [row_id for row_id, _ in fresh],
                np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in fresh]),
            )
        # More candidates than are served: held answers (waiting for a reviewer) among the
        # nearest must not hide a servable one just behind them.
        found = index.search(vector, self.policy.threshold, limit=_CANDIDATES * 4)
        if not found:
            return None
        ids = [row_id for row_id, _ in found]
        live = {e.id: e for e in await self.deps.in_session(lambda s: entries_by_id(s, ids))}
        gone = [row_id for row_id in ids if row_id not in live]
        if gone:
            index.remove(gone)
        # A held answer (the gate did not accept it, no reviewer has approved it) stays in the
        # index: an approval may make it servable.
        ranked = [(live[i], score) for i, score in found if i in live and not live[i].held]
        ranked = ranked[:_CANDIDATES]
        if not ranked:
            return None
        entry, score = max(ranked, key=lambda pair: (pair[0].approved, pair[1]))
        return CacheHit(entry=entry, kind="semantic_hit", similarity=round(score, 4))

    def _index_for(self, partition: tuple[str, str], dimensions: int) -> VectorIndex:
        """The partition's index, made when missing; the least recently used beyond
        ``MAX_INDEXES`` is dropped."""
        index = self._indexes.get(partition)
        if index is None:
            index = self._indexes[partition] = VectorIndex(dimensions)
        self._indexes.move_to_end(partition)
        while len(self._indexes) > MAX_INDEXES:
            self._indexes.popitem(last=False)
        return index

    async def remember(
        self,
        key: CacheKey,
        inp: LlmStepInput,
        *,
        output: dict[str, object],
        raw_output: str,
        output_digest: str,
        confidence: dict[str, object],
        provider: str,
        held: bool,
        calls: EmbeddingCalls | None = None,
    ) -> None:
        """Keep a valid answer (with its input's embedding when semantic lookup is on); a
        ``held`` one (the gate did not accept it) is served only once a reviewer approves it."""
        vector = self._vectors.pop((key.partition, key.input_digest), None)
        if vector is None:
            vector = await self.embeddings.vector(key.input_text, calls)
        embedder = self.embeddings.embedder()
        now = datetime.now(UTC)
        entry = CacheEntry(
            partition=key.partition,
            route_scope=key.route_scope,
            tenant=inp.tenant,
            workflow=inp.workflow,
            step=inp.step,
            prompt_version=key.prompt_version,
            model=key.model,
            input_digest=key.input_digest,
            embedder=embedder.name if embedder is not None and vector is not None else None,
            embedding=vector.astype(np.float32).tobytes() if vector is not None else None,
            output=dict(output),
            raw_output=raw_output,
            output_digest=output_digest,
            confidence=dict(confidence),
            provider=provider,
            source_run_id=inp.run_id,
            held=held,
            created_at=now,
            expires_at=now + self.policy.ttl,
        )
        try:
            await self.deps.in_session(lambda session: insert_entry(session, entry))
        except SQLAlchemyError as exc:  # the answer stands; only its reuse is lost
            log.warning("cache entry not stored: %s", type(exc).__name__)

    # --- checking an answer before its first reuse ---------------------------------------

    def needs_check(self, hit: CacheHit, run_id: str) -> bool:
        """Whether the judge should grade ``hit``'s answer before it is served: the policy asks
        for it, nobody (reviewer or judge) has vouched for the answer yet, and it is not this
        run's own answer (a retried attempt reusing what its first attempt paid for)."""
        entry = hit.entry
        if entry.source_run_id == run_id:
            return False
        return self.policy.verify_reuse and not (entry.approved or entry.verified)

    async def vouch(self, hit: CacheHit, score: float | None) -> bool:
        """Record the judge's grade of ``hit``'s answer for the input reusing it; True when it
        may be served: a score of at least ``verify_min_score``, and the entry still live (a
        reviewer or another worker may have evicted it during the check). A poor score evicts
        it; no score (the judge's verdict unreadable, or the judge unreachable) leaves it as it
        was and serves nothing. A store error is a miss, like a failed lookup."""
        entry_id = hit.entry.id
        assert entry_id is not None
        try:
            if score is not None and score >= self.policy.verify_min_score:
                return bool(
                    await self.deps.in_session(lambda session: mark_verified(session, entry_id))
                )
            if score is not None:
                same = hit.kind == "exact_hit"
                await self.deps.in_session(
                    lambda session: doubt_entry(session, entry_id, same_input=same)
                )
        except SQLAlchemyError as exc:
            log.warning("cache check not recorded, treated as a miss: %s", type(exc).__name__)
        return False

    # --- the learned routing rule -------------------------------------------------------

    async def learned_rule(
        self,
        tenant: str,
        workflow: str,
        step: str,
        text: str,
        calls: EmbeddingCalls | None = None,
    ) -> LearnedRule:
        """The learned rule for one input, ready for ``policies.route_rules.route_tier``: how
        many of the nearest past inputs of this workflow step (same tenant) reviewers rejected
        or edited. Asks the embedder and the store now; the rule itself is pure."""
        settings = self.policy.learned_route
        vector = await self.embeddings.vector(text, calls)
        embedder = self.embeddings.embedder()
        if vector is None or embedder is None:
            return _no_signal
        scope = route_scope(tenant, workflow, step)
        rows = await self.deps.in_session(
            lambda session: verdict_vectors(session, scope, embedder.name)
        )
        if not rows:
            return _no_signal
        matrix = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
        scores = matrix @ vector
        nearest = [i for i in np.argsort(-scores)[: settings.neighbours]]
        nearest = [i for i in nearest if scores[i] >= settings.min_similarity]
        troubled = sum(rows[i][0] in ("rejected", "edited") for i in nearest)
        verdict = LearnedVerdict(
            troubled=bool(nearest) and troubled >= settings.min_troubled,
            reason=f"{troubled} of {len(nearest)} nearest rejected or edited",
        )

        def rule(request: RouteRequest) -> LearnedVerdict | None:
            return verdict

        return rule


def _no_signal(request: RouteRequest) -> LearnedVerdict | None:
    return None
