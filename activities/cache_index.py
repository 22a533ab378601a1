"""An in-process index of unit vectors for the semantic cache: cosine search with numpy.

Rows live in groups, each a contiguous matrix. While the index is small it is one group and a
query is one matrix-vector product over every row. Past ``BRUTE_FORCE_ROWS`` the rows are
regrouped around k-means centroids (an inverted file): a query scores the centroids, then only
the rows of the ``probes`` nearest groups, so a lookup at 100,000 rows reads a few thousand. A
new row joins its nearest group; the groups are made anew when the index has doubled since.
bench/bench_cache.py measures latency and recall against the exhaustive search.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BRUTE_FORCE_ROWS", "VectorIndex"]

Matrix = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

BRUTE_FORCE_ROWS = 8_192
_KMEANS_ROUNDS = 6
_KMEANS_SAMPLE = 16_384


@dataclass
class _Group:
    ids: Ids
    matrix: Matrix

    def append(self, ids: Ids, vectors: Matrix) -> None:
        self.ids = np.concatenate([self.ids, ids])
        self.matrix = np.concatenate([self.matrix, vectors])


class VectorIndex:
    """Rows of (id, unit vector); thread-safe."""

    def __init__(self, dimensions: int, probes: int = 6, seed: int = 0) -> None:
        self.dimensions = dimensions
        self.probes = probes
        self.last_id = 0
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self._groups = [_Group(np.zeros(0, np.int64), np.zeros((0, dimensions), np.float32))]
        self._centroids: Matrix | None = None
        self._size = 0
        self._grouped_at = 0

    def __len__(self) -> int:
        return self._size

    def add(self, ids: list[int], vectors: Matrix) -> None:
        """Add rows; each joins the group of its nearest centroid."""
        if not ids:
            return
        with self._lock:
            id_array = np.asarray(ids, dtype=np.int64)
            vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dimensions)
            if self._centroids is None:
                self._groups[0].append(id_array, vectors)
            else:
                nearest = np.argmax(vectors @ self._centroids.T, axis=1)
                for group in np.unique(nearest):
                    chosen = nearest == group
                    self._groups[int(group)].append(id_array[chosen], vectors[chosen])
            self._size += len(ids)
            self.last_id = max(self.last_id, int(id_array.max()))
            if self._size > BRUTE_FORCE_ROWS and self._size >= 2 * self._grouped_at:
                self._regroup()

    def remove(self, ids: list[int]) -> None:
        """Forget rows (evicted or expired, maybe by another worker)."""
        with self._lock:
            for group in self._groups:
                keep = ~np.isin(group.ids, ids)
                if not keep.all():
                    self._size -= int((~keep).sum())
                    group.ids, group.matrix = group.ids[keep], group.matrix[keep]

    def search(self, query: Matrix, threshold: float, limit: int = 5) -> list[tuple[int, float]]:
        """Up to ``limit`` (id, cosine) pairs at or above ``threshold``, most similar first."""
        with self._lock:
            if self._centroids is None:
                chosen = [self._groups[0]]
            else:
                near = self._centroids @ query
                probes = min(self.probes, len(near))
                chosen = [self._groups[g] for g in np.argpartition(-near, probes - 1)[:probes]]
            found_ids: list[Ids] = []
            found_scores: list[Matrix] = []
            for group in chosen:
                scores = group.matrix @ query
                keep = scores >= threshold
                if keep.any():
                    found_ids.append(group.ids[keep])
                    found_scores.append(scores[keep])
        if not found_ids:
            return []
        ids, scores = np.concatenate(found_ids), np.concatenate(found_scores)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def _regroup(self) -> None:
        """k-means over a sample of the rows, then every row into its nearest centroid's group."""
        ids = np.concatenate([g.ids for g in self._groups])
        matrix = np.concatenate([g.matrix for g in self._groups])
        size = len(ids)
        count = max(16, int(math.sqrt(size)))
        sample = matrix[self._rng.choice(size, size=min(size, _KMEANS_SAMPLE), replace=False)]
        centroids = sample[self._rng.choice(len(sample), size=count, replace=False)].copy()
        for _ in range(_KMEANS_ROUNDS):
            nearest = np.argmax(sample @ centroids.T, axis=1)
            for group in range(count):
                members = sample[nearest == group]
                if len(members):
                    centroids[group] = members.mean(axis=0)
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        assigned = np.empty(size, dtype=np.int64)
        for start in range(0, size, 8_192):
            block = matrix[start : start + 8_192]
            assigned[start : start + len(block)] = np.argmax(block @ centroids.T, axis=1)
        order = np.argsort(assigned, kind="stable")
        bounds = np.searchsorted(assigned[order], np.arange(count + 1))
        self._groups = [
            _Group(ids[order[bounds[g] : bounds[g + 1]]], matrix[order[bounds[g] : bounds[g + 1]]])
            for g in range(count)
        ]
        self._centroids = centroids
        self._grouped_at = size
