"""What the PII guard adds to a step beyond redaction itself: reading the run's vault.

Run ``python -m bench.bench_pii_step`` (``--steps N``, ``--values V``). A SQLite store (a file,
as in dev) holds a run whose input had V values redacted; each step then does what
``activities.llm_step.pii_guard.StepPii.redact_messages`` does with a 2 KB prompt carrying the
run's placeholders: the common case (nothing new: a probe redaction and a count, no store read),
and the case with new values (open a session, read and decrypt the run's V vault rows, AES-GCM,
and redact with the run's numbering). p50/p95 in ms are printed and written to bench/results/pii_step.json.
With the ``presidio`` extra installed, the same probe with ``pii.detectors: [builtin, presidio]``
is timed too, after the analyzer's one-off build (printed in seconds).
Nothing is asserted; the guard-overhead target (issue 10) is 2 ms p50 for all guards together.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from activities.pii_presidio import pii_detectors
from policies.guard_settings import PiiGuardSettings, presidio_installed
from policies.pii import Redactor, placeholder_counts
from tether.store.engine import session_scope, upgrade_database
from tether.store.pii_vault import PiiSealer, keep_originals
from tether.store.run_pii import run_redactor

PROMPT = (
    "Classify this ticket by category and priority.\nSubject: Charged twice on card [CARD_1]\n\n"
    "Hello, this is Jane ([EMAIL_1], [PHONE_1]). My card [CARD_1] was charged twice for order "
    "A-1001. Please refund to IBAN [IBAN_1]. "
    + "The tracking page has shown 'in transit' for six days without any update. "
    * 24
)


def run(steps: int, values: int) -> dict[str, object]:
    sealer = PiiSealer(b"bench-key-" * 4)
    settings = PiiGuardSettings()
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{Path(home) / 'tether.db'}"
        upgrade_database(url)
        start = Redactor(settings)
        start.redact(" ".join(f"user{i}@example.com" for i in range(values)))
        with session_scope(url) as session:
            keep_originals(session, sealer, "run-1", "default", start.mapping)
        wall: list[float] = []
        cpu: list[float] = []
        probe_cpu: list[float] = []
        for _ in range(steps):
            began_cpu = time.thread_time()
            Redactor(settings).redact(PROMPT)  # the common case: nothing new, no vault read
            placeholder_counts([PROMPT], kinds=settings.kinds)
            probe_cpu.append((time.thread_time() - began_cpu) * 1000)
            began, began_cpu = time.perf_counter(), time.thread_time()
            with session_scope(url) as session:
                redactor, _ = run_redactor(session, sealer, "run-1", settings, ())
            redactor.redact(PROMPT)
            wall.append((time.perf_counter() - began) * 1000)
            cpu.append((time.thread_time() - began_cpu) * 1000)
    result: dict[str, object] = {}
    if presidio_installed():
        both = PiiGuardSettings(detectors=("builtin", "presidio"))
        began = time.perf_counter()
        detectors = pii_detectors(both)
        result["presidio_build_s"] = round(time.perf_counter() - began, 2)
        presidio_cpu: list[float] = []
        for _ in range(steps):
            began_cpu = time.thread_time()
            Redactor(both, detectors).redact(PROMPT)
            presidio_cpu.append((time.thread_time() - began_cpu) * 1000)
        result["placeholders_only_presidio_cpu"] = _figures(presidio_cpu)
    return result | {
        "steps": steps,
        "vault_values": values,
        "placeholders_only_cpu": _figures(probe_cpu),
        "wall": _figures(wall),
        "cpu": _figures(cpu),
    }


def _figures(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--values", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path("bench/results/pii_step.json"))
    args = parser.parse_args()
    result = run(args.steps, args.values)
    print(
        f"PII step guard (vault read of {result['vault_values']} values + redaction of a 2 KB "
        f"prompt), {result['steps']} steps; wall and the thread's CPU time (the guard's own cost "
        "on a shared machine):"
    )
    labels = {
        "placeholders_only_cpu": "prompt with placeholders only (no vault read), cpu",
        "wall": "new values (vault read and redaction), wall",
        "cpu": "new values (vault read and redaction), cpu",
        "placeholders_only_presidio_cpu": "placeholders only, [builtin, presidio], cpu",
    }
    if "presidio_build_s" in result:
        print(f"  Presidio analyzer built once per process in {result['presidio_build_s']} s")
    for key, label in labels.items():
        if key not in result:
            continue
        figures = result[key]
        assert isinstance(figures, dict)
        print(f"  {label:52}  p50 {figures['p50_ms']:.3f} ms  p95 {figures['p95_ms']:.3f} ms")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
