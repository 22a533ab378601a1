"""``tether eval`` and ``tether calibrate`` from the command line, against the fake OpenAI
server: the step's answers and the judge's verdicts are scripted by what each request asks, so
every figure in the report is known in advance (worked out in the comments)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from tests.fakes.provider_server import FakeProviderServer
from tether.cli import main
from tether.core.settings import Settings
from tether.store.engine import dispose_all, get_engine, session_scope
from tether.store.examples import record_example
from tether.store.ledger import LedgerEntry
from tether.store.reviews import ReviewItem

DEFAULT_POLICY = Path(__file__).parents[2] / "policies" / "default.yaml"

# subject -> (expected, what gpt-4o-mini answers, what gpt-4o answers); the rationale marks
# which output a judge request is about.
TICKETS = {
    "Refund please": (("billing", "high"), ("billing", "high"), ("billing", "high")),
    "Double charge": (("billing", "urgent"), ("billing", "low"), ("billing", "urgent")),
    "App crashes": (("technical", "high"), ("account", "low"), ("technical", "high")),
    "Password reset": (("account", "normal"), ("account", "normal"), ("account", "normal")),
}
# The judge's verdict per output (by rationale): baseline scores .9 .7 .2 .8 (pass rate 3/4,
# mean .65); the variant's all 1.0; the labelled outputs h-* give the kappa case below.
VERDICTS = {
    "mini-Refund please": ("pass", 0.9),
    "mini-Double charge": ("pass", 0.7),
    "mini-App crashes": ("fail", 0.2),
    "mini-Password reset": ("pass", 0.8),
    "h-Refund please": ("pass", 1.0),
    "h-Double charge": ("pass", 1.0),
    "h-App crashes": ("fail", 0.0),
    "h-Password reset": ("pass", 1.0),
}


def step_answer(body: dict[str, Any]) -> Any:
    """The fake model: a classification by ticket subject and model; the judge by output."""
    schema = body["response_format"]["json_schema"]["name"]
    user = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
    if schema == "Classification":
        # The subject as the step sent it: fenced as untrusted input by the injection guard.
        subject = re.search(r"Subject: (?:<<<BEGIN [^>]+>>>\n)?(.*)", user)
        assert subject is not None
        name = subject.group(1).strip()
        _, mini, big = TICKETS[name]
        category, priority = big if body["model"] == "gpt-4o" else mini
        who = "big" if body["model"] == "gpt-4o" else "mini"
        return {"category": category, "priority": priority, "rationale": f"{who}-{name}"}
    if schema == "EvalVerdict":
        # The output as the judge step sent it: fenced as untrusted input.
        fenced = user.split("Output to grade:\n", 1)[1]
        graded = json.loads(re.search(r"<<<BEGIN ([^>]+)>>>\n(.*?)\n<<<END \1>>>", fenced, re.S)[2])
        verdict, score = VERDICTS.get(graded["rationale"], ("pass", 1.0))
        return {"verdict": verdict, "score": score, "reason": f"graded {graded['rationale']}"}
    return None  # the step's own confidence judge: the default answer


@pytest.fixture
def eval_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider_server: FakeProviderServer
) -> Settings:
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    policy["routing"]["tiers"] = {"cheap": ["openai/gpt-4o-mini"], "strong": ["openai/gpt-4o"]}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    env = {
        "TETHER_HOME": str(tmp_path / "home"),
        "TETHER_POLICY_FILE": str(policy_file),
        "OPENAI_API_KEY": provider_server.openai_api_key,
        "OPENAI_BASE_URL": provider_server.openai_base_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    provider_server.answer_by_content(step_answer)
    yield Settings.from_env()
    dispose_all()


def dataset_line(subject: str, *, labelled: bool = False) -> dict[str, Any]:
    (category, priority), _, _ = TICKETS[subject]
    line: dict[str, Any] = {
        "id": subject,
        "input": {"subject": subject, "body": f"About: {subject}."},
        "expected": {"category": category, "priority": priority},
    }
    if labelled:  # human labels approve, approve, reject, reject on the outputs h-*
        human = {"Refund please": "approve", "Double charge": "approve"}.get(subject, "reject")
        line["human_label"] = human
        line["judged_output"] = {
            "category": category,
            "priority": priority,
            "rationale": f"h-{subject}",
        }
    return line


def write_dataset(path: Path, lines: list[dict[str, Any]] | list[str]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_eval_scores_fields_exact_and_judge_with_kappa_and_a_variant_interval(
    eval_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_dataset(
        tmp_path / "tickets.jsonl", [dataset_line(s, labelled=True) for s in TICKETS]
    )
    out = tmp_path / "reports"
    code = main(
        ["eval", "support_triage", "classify", "--dataset", str(data),
         "--variant", "model=openai/gpt-4o", "--out", str(out)]
    )  # fmt: skip
    said = capsys.readouterr()
    assert code == 0, said.err
    [json_file] = list(out.glob("*.json"))
    report = json.loads(json_file.read_text())
    base, variant = report["variants"]
    # Expected vs gpt-4o-mini: category right 3/4, priority right 2/4, both right 2/4.
    assert base["examples"] == 4 and base["valid"] == 4 and base["failed"] == 0
    assert base["field_accuracy"] == {"category": 0.75, "priority": 0.5}
    assert base["exact_rate"] == 0.5
    assert base["judge_pass_rate"] == 0.75
    assert base["judge_mean_score"] == pytest.approx(0.65)
    assert variant["exact_rate"] == 1.0 and variant["judge_mean_score"] == pytest.approx(1.0)
    # Judge on h-*: pass pass fail pass; humans: yes yes no no. po = 3/4; judge yes 3/4, human
    # yes 1/2: pe = .75*.5 + .25*.5 = .5; kappa = (.75 - .5) / (1 - .5) = 0.5.
    agreement = report["judge_human_agreement"]
    assert agreement["examples"] == 4 and agreement["kappa"] == pytest.approx(0.5)
    # Per-example judge score differences .1 .3 .8 .2: mean .35; every resample's mean lies
    # between the smallest and the largest difference.
    comparison = report["comparison"]
    assert comparison["mean"] == pytest.approx(0.35)
    assert 0.1 <= comparison["low"] <= 0.35 <= comparison["high"] <= 0.8
    # The terminal table and the progress bar (piped: a plain line, not a redrawn bar).
    assert "field category" in said.out and "75.0%" in said.out and "kappa" in said.out
    assert "better" in said.out
    assert "eval support_triage.classify: 8/8" in said.err
    page = next(out.glob("*.html")).read_text()
    assert "<table" in page and "75.0%" in page
    assert "src=" not in page and "href=" not in page  # self-contained
    # Charged like any call, under the eval tenant and eval run ids.
    with Session(get_engine(eval_env.resolved_database_url)) as session:
        rows = list(session.exec(select(LedgerEntry)).all())
    assert rows and all(r.tenant == "eval" and r.run_id.startswith("eval:") for r in rows)
    assert sum(r.cost_usd for r in rows) == pytest.approx(base["cost_usd"] + variant["cost_usd"])


def test_a_bad_dataset_names_every_bad_line_and_runs_nothing(
    eval_env: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    provider_server: FakeProviderServer,
) -> None:
    data = write_dataset(
        tmp_path / "bad.jsonl",
        [
            json.dumps(dataset_line("Refund please")),
            '{"input": {"subject": "x"',
            json.dumps(dataset_line("App crashes")),
            json.dumps({"inputs": {"subject": "typo"}}),
        ],
    )
    code = main(
        ["eval", "support_triage", "classify", "--dataset", str(data), "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"{data}:2: not JSON" in err and f"{data}:4:" in err
    assert "2 bad line(s)" in err and "nothing was run" in err
    assert provider_server.requests == []


def test_eval_over_the_reviews_and_calibrate_from_them(
    eval_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    # Scores and labels: .95 approve x5 (audits), .85 approve x4 + edit x1, .55 reject x3.
    labels = [(0.95, "approve")] * 5 + [(0.85, "approve")] * 4 + [(0.85, "edit")]
    labels += [(0.55, "reject")] * 3
    with session_scope(eval_env.resolved_database_url) as session:
        for n, (score, decision) in enumerate(labels):
            subject = list(TICKETS)[n % 4]
            (category, priority), _, _ = TICKETS[subject]
            output = {"category": category, "priority": priority, "rationale": f"h-{subject}"}
            item = ReviewItem(
                review_id=f"r{n}:classify:1", run_id=f"r{n}", workflow="support_triage",
                step="classify", tenant="default", reason="low_confidence", summary="s",
                output=output, output_model="workflows.support_triage_steps:Classification",
                output_digest="d", confidence_score=score, expires_at=now + timedelta(days=1),
                status="done", decision=decision, reviewer="bob", decided_at=now,
                decided_via="web", decided_output=output if decision == "edit" else None,
                step_input={"subject": subject, "body": f"About: {subject}."},
                decision_reason="wrong" if decision == "reject" else None,
            )  # fmt: skip
            session.add(item)
            session.flush()
            record_example(session, item)

    assert main(["calibrate", "support_triage", "classify", "--target", "0.9"]) == 0
    out = capsys.readouterr().out
    # >= .9: 5/5; .6 to .85: 9/10 = 90 %; <= .55: 9/13. Lowest meeting 90 %: 0.60.
    assert "suggested accept threshold for 90% precision: 0.60" in out
    assert re.search(r"0\.85\s+10\s+9\s+90\.0%", out)

    code = main(
        ["eval", "support_triage", "classify", "--dataset", "reviews", "--no-judge",
         "--limit", "8", "--out", str(tmp_path / "r")]
    )  # fmt: skip
    assert code == 0
    report = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    # 8 approved examples, subjects cycling: expected = the reviewer-approved output, which
    # gpt-4o-mini matches on category for 3 of 4 subjects and on priority for 2 of 4.
    [base] = report["variants"]
    assert base["examples"] == 8
    assert base["field_accuracy"]["category"] == 0.75
    assert base["field_accuracy"]["priority"] == 0.5
    assert base["field_accuracy"]["rationale"] == 0.0


def test_a_prompt_variant_from_a_file_is_asked_and_compared_on_field_accuracy(
    eval_env: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    provider_server: FakeProviderServer,
) -> None:
    data = write_dataset(tmp_path / "t.jsonl", [dataset_line(s) for s in TICKETS])
    prompt = tmp_path / "v2.json"
    prompt.write_text(
        json.dumps(
            {
                "version": "2",
                "system": "You triage tickets, v2. JSON only.",
                "user": "Triage.\nSubject: {subject}\n\n{body}",
            }
        )
    )
    out = tmp_path / "reports"
    args = ["eval", "support_triage", "classify", "--dataset", str(data), "--no-judge"]
    assert main([*args, "--variant", f"prompt={prompt}", "--out", str(out)]) == 0
    report = json.loads(next(out.glob("*.json")).read_text())
    # Same model, same answers: per-example field accuracy 1, .5, 0, 1 on both; difference 0.
    assert report["metric"] == "fields"
    assert [v["field_accuracy"] for v in report["variants"]] == [
        {"category": 0.75, "priority": 0.5}
    ] * 2
    assert (report["comparison"]["mean"], report["comparison"]["low"]) == (0.0, 0.0)
    systems = {
        m["content"]
        for r in provider_server.requests
        for m in r.json["messages"]
        if m["role"] == "system"
    }
    # The variant's system prompt was sent (followed by the injection guard's fence notice).
    assert any(system.startswith("You triage tickets, v2. JSON only.") for system in systems)
    assert "no clear difference" in capsys.readouterr().out
