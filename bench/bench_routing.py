"""Routing and breaker overhead per step: what the activity adds before and around a model call.

Run ``python -m bench.bench_routing`` (``--inputs N``, ``--seed S``). For N support tickets of
0.3-6 KB with a fixed seed (English and German, some with code), measures what a step's activity
does for routing and circuit breaking: the input's features and the rule decision
(``activities.step_routing.step_route`` with the embedded policy), the breaker check
(``should_skip``), and a permit taken and a call recorded (``acquire`` + ``observe``) around an
empty call. Prints p50/p95 wall and thread-CPU time per part and together; results also go to
bench/results/routing.json. Nothing is asserted. Target (issue 10): PII + injection + routing +
breaker <= 2 ms p50 per step (bench_guards measures the input guards).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path
from unittest.mock import MagicMock

from activities.deps import ActivityDeps
from activities.provider_health import ProviderHealth
from activities.step_routing import step_route
from policies.loader import load_policy
from policies.route_features import RouteRequest, input_features

_ENGLISH = [
    "I was charged twice for my subscription this month and want one payment refunded.",
    "The app crashes every time I open the settings page on my phone.",
    "Could you tell me how to change the email address on my account?",
    "My parcel has shown 'in transit' for six days without any update.",
]
_GERMAN = [
    "Ich wurde diesen Monat zweimal belastet und möchte eine Zahlung zurück.",
    "Die App stürzt jedes Mal ab, wenn ich die Einstellungen öffne.",
    "Wie kann ich die E-Mail-Adresse meines Kontos ändern?",
]
_CODE = "```python\nfor order in orders:\n    total += order.price * order.quantity\n```\n"


def ticket(rng: random.Random) -> str:
    sentences = _GERMAN if rng.random() < 0.2 else _ENGLISH
    text = " ".join(rng.choice(sentences) for _ in range(rng.randint(4, 70)))
    return text + ("\n" + _CODE if rng.random() < 0.1 else "")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 4),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 4),
    }


def run(inputs: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    tickets = [ticket(rng) for _ in range(inputs)]
    policy = load_policy()
    providers = MagicMock()
    providers.available = lambda model: True
    health = ProviderHealth(policy.provider_health)
    deps = ActivityDeps(settings=MagicMock(), policy=policy, providers=providers, health=health)
    parts: dict[str, list[float]] = {"routing": [], "breaker": [], "total": []}
    cpu: dict[str, list[float]] = {"routing": [], "breaker": [], "total": []}
    tiers: dict[str, int] = {}
    for text in tickets:
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        request = RouteRequest(features=input_features(text), tenant="acme", workflow="w", step="s")
        route = step_route(deps, tier="auto", model=None, input_chars=len(text), request=request)
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        model = route.models[0]
        if not health.should_skip(model):
            permit = health.acquire(model)
            with health.observe(model, permit):
                pass
        w2, c2 = time.perf_counter_ns(), time.thread_time_ns()
        tiers[route.tier or "model"] = tiers.get(route.tier or "model", 0) + 1
        for name, wall, thread in (
            ("routing", w1 - w0, c1 - c0),
            ("breaker", w2 - w1, c2 - c1),
            ("total", w2 - w0, c2 - c0),
        ):
            parts[name].append(wall / 1e6)
            cpu[name].append(thread / 1e6)
    return {
        "inputs": inputs,
        "seed": seed,
        "python": platform.python_version(),
        "tiers": tiers,
        "wall": {name: _percentiles(samples) for name, samples in parts.items()},
        "cpu": {name: _percentiles(samples) for name, samples in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=Path("bench/results/routing.json"))
    args = parser.parse_args()
    result = run(args.inputs, args.seed)
    print(f"routing + breaker overhead per step ({args.inputs} tickets, seed {args.seed})")
    print(f"  tiers chosen: {result['tiers']}")
    for name in ("routing", "breaker", "total"):
        wall, cpu = result["wall"][name], result["cpu"][name]  # type: ignore[index]
        print(
            f"  {name:8s} wall p50 {wall['p50_ms']:.3f} ms p95 {wall['p95_ms']:.3f} ms"
            f" | cpu p50 {cpu['p50_ms']:.3f} ms p95 {cpu['p95_ms']:.3f} ms"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
