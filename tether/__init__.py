"""Tether: durable LLM workflows on Temporal with confidence gates, cost checkpoints and human review."""

import os as _os

# numpy's OpenBLAS (the offline embedder, the cache's vector index) works on small matrices here,
# where its thread pool costs more than it saves: one thread per call measured 12 vs 24 ms for a
# short text and 45 vs 117 ms for a 250-character one on 2 cores. Set before numpy is imported;
# an operator's own OPENBLAS_NUM_THREADS wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
