"""The Grafana dashboard and the compose file, checked statically: every Tether metric the
dashboard charts is one the code exports, and what compose mounts exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import tether.core.metrics  # noqa: F401  (registers Tether's metrics)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "tether.json"


def exported_samples() -> set[str]:
    """Every sample name the registry's metrics can produce, labelled children made or not."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def test_the_dashboard_charts_only_metrics_tether_exports() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(tether_[a-z_]+)", expr)}
    exported = exported_samples() | {"tether_review_queue_depth"}  # read at scrape time
    assert used, "the dashboard charts Tether's metrics"
    assert used - exported == set(), "charted but never exported"
    for wanted in (
        "tether_cost_usd_total",
        "tether_cache_lookups_total",
        "tether_breaker_state",
        "tether_budget_alerts_total",
        "tether_time_to_decision_seconds_bucket",
    ):
        assert wanted in used


def test_compose_runs_prometheus_and_grafana_on_the_shared_metrics_folder() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("tether-worker", "tether-ui"):
        env = services[name].get("environment") or compose["x-tether"]["environment"]
        assert env["PROMETHEUS_MULTIPROC_DIR"] == "/var/lib/tether-metrics"
    mounts = [m.split(":")[0] for s in ("prometheus", "grafana") for m in services[s]["volumes"]]
    for mount in mounts:
        if mount.startswith("./"):
            assert (ROOT / mount).exists(), mount
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["tether-ui:8000"]
