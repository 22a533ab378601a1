"""Identity and logins, tried as an attacker would (issue 9, items 2 and 3).

Each test names the hole it closes: a requester taken from the input, case games with names,
starting runs without the role, rotating tenants, seeing and deciding other tenants' items,
production serving the dev logins, plaintext passwords, unthrottled guessing, a cookie that
outlives logout or carries a password-derived value, and missing security headers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from argon2 import PasswordHasher
from sqlmodel import Session
from temporalio.client import Client

from policies.approval import decision_problem
from policies.loader import load_policy
from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.security.apps import app_over, unreachable_temporal, with_login
from tether.cli import main
from tether.core.errors import ConfigurationError
from tether.core.settings import Settings
from tether.store.engine import dispose_all, get_engine
from tether.store.reviews import ReviewItem

DEV_POLICY = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"
DAVE = ("dave", "dave-globex-password")  # support for tenant globex only
LONG_SECRET = "a-private-session-secret-of-enough-length"


def _with_dave(policy: TetherPolicy) -> TetherPolicy:
    return with_login(policy, DAVE[0], DAVE[1], ["reviewer", "support"], ["globex"])


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    """Settings whose Temporal is unreachable: every test here is refused before it."""
    return unreachable_temporal(tmp_path)


@pytest.fixture
async def app_client(store_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_over(store_settings, _with_dave(load_policy())) as http:
        yield http


def _seed(settings: Settings, tenant: str) -> str:
    now = datetime.now(UTC)
    review_id = f"run-{uuid.uuid4().hex[:8]}:classify:1"
    row = ReviewItem(
        review_id=review_id,
        run_id=review_id.split(":")[0],
        workflow="support_triage",
        step="classify",
        tenant=tenant,
        reason="low_confidence",
        summary="classify needs review",
        output={"category": "billing"},
        output_digest="sha256:" + "0" * 64,
        confidence_score=0.6,
        cost_usd=0.001,
        allowed_roles=["support", "lead"],
        opened_at=now,
        due_at=now + timedelta(hours=1),
        expires_at=now + timedelta(days=7),
    )
    with Session(get_engine(settings.resolved_database_url)) as session:
        session.add(row)
        session.commit()
    return review_id


def _start(workflow: str = "support_triage", **ticket: Any) -> dict[str, Any]:
    body = {"subject": "Charged twice", "body": "I was billed twice for order 1234."}
    return {"workflow": workflow, "input": body | ticket}


# --- item 2: who starts runs, as whom, for which tenant -----------------------------------------


async def test_an_input_naming_another_requester_is_refused(app_client: httpx.AsyncClient) -> None:
    # alice names bob as requester, so that she could approve "his" run herself.
    response = await app_client.post(
        "/api/runs", json=_start(requester="bob"), auth=("alice", "alice-dev")
    )
    assert response.status_code == 422
    assert "requester" in response.json()["detail"]


async def test_a_viewer_cannot_start_runs(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/api/runs", json=_start(), auth=("carol", "carol-dev"))
    assert response.status_code == 403
    assert "may not start support_triage" in response.json()["detail"]


async def test_a_workflows_starters_decide_who_starts_it(store_settings: Settings) -> None:
    policy = load_policy()
    section = policy.workflows["support_triage"].model_copy(update={"starters": ["support"]})
    policy = policy.model_copy(update={"workflows": policy.workflows | {"support_triage": section}})
    app = create_app(store_settings, policy=policy)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        # bob (reviewer, lead) has no support role: refused before anything starts.
        refused = await http.post("/api/runs", json=_start(), auth=("bob", "bob-dev"))
    assert refused.status_code == 403
    dispose_all()


async def test_a_run_cannot_be_charged_to_another_tenant(app_client: httpx.AsyncClient) -> None:
    # alice works for default and acme; rotating to globex would dodge her tenants' budgets.
    response = await app_client.post(
        "/api/runs", json=_start(tenant="globex"), auth=("alice", "alice-dev")
    )
    assert response.status_code == 403
    assert "globex" in response.json()["detail"]


def test_requester_and_reviewer_are_compared_casefolded() -> None:
    problem = decision_problem(
        review_id="r1",
        workflow="support_triage",
        reviewer="Bob",
        reviewer_roles=["support"],
        allowed_roles=["support"],
        requester="bob",
    )
    assert problem is not None and "requested this run" in problem


async def test_a_reviewer_sees_and_decides_only_their_tenants_items(
    store_settings: Settings, app_client: httpx.AsyncClient
) -> None:
    theirs = _seed(store_settings, "globex")
    other = _seed(store_settings, "default")
    listed = await app_client.get("/api/reviews", auth=DAVE)
    assert listed.status_code == 200
    assert [item["review_id"] for item in listed.json()["items"]] == [theirs]
    assert (await app_client.get(f"/api/reviews/{theirs}", auth=DAVE)).status_code == 200
    # Another tenant's item is answered as if it did not exist: read, decide, claim.
    assert (await app_client.get(f"/api/reviews/{other}", auth=DAVE)).status_code == 404
    decision = {"kind": "approve", "output_digest": "sha256:" + "0" * 64}
    decided = await app_client.post(f"/api/reviews/{other}/decision", json=decision, auth=DAVE)
    assert decided.status_code == 404
    assert (await app_client.post(f"/api/reviews/{other}/claim", auth=DAVE)).status_code == 404
    # alice (default, acme) sees the default item and not globex's.
    alice = await app_client.get("/api/reviews", auth=("alice", "alice-dev"))
    assert [item["review_id"] for item in alice.json()["items"]] == [other]


async def test_the_queue_page_shows_only_the_reviewers_tenants(
    store_settings: Settings, app_client: httpx.AsyncClient
) -> None:
    theirs = _seed(store_settings, "globex")
    other = _seed(store_settings, "default")
    await _sign_in(app_client, *DAVE)
    queue = await app_client.get("/")
    assert queue.status_code == 200
    shown = queue.text.replace("%3A", ":")
    assert theirs in shown and other not in shown
    assert (await app_client.get(f"/reviews/{other}")).status_code == 404


def test_slack_refuses_a_click_on_another_tenants_item(store_settings: Settings) -> None:
    from activities.slack_message import ButtonValue
    from review_ui.routes.slack import _refusal

    other = _seed(store_settings, "default")
    with Session(get_engine(store_settings.resolved_database_url)) as session:
        item = session.get(ReviewItem, 1)
        assert item is not None and item.review_id == other
    dave = _with_dave(load_policy()).reviewers[-1]
    value = ButtonValue(review_id=other, digest=item.output_digest)
    refusal = _refusal(item, dave, value)
    assert refusal is not None and "no longer exists" in refusal
    dispose_all()


# --- item 3: production logins, hashes, throttling, sessions, headers -----------------------------


def _production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> None:
    monkeypatch.setenv("TETHER_ENV", "production")
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    monkeypatch.setenv("TETHER_SESSION_SECRET", LONG_SECRET)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def test_production_refuses_the_embedded_dev_logins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _production(monkeypatch, tmp_path)
    assert main(["ui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dev login" in err
    with pytest.raises(ConfigurationError, match="dev login"):
        create_app(Settings.from_env())


def test_production_refuses_a_copy_of_the_dev_policy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "policy.yaml"
    copy.write_text(DEV_POLICY.read_text())
    _production(monkeypatch, tmp_path, TETHER_POLICY_FILE=str(copy))
    assert main(["ui"]) == 2
    assert "dev login" in capsys.readouterr().err


def test_production_refuses_plaintext_passwords(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(DEV_POLICY.read_text())
    data["reviewers"] = [{"name": "erin", "password": "erin-pass", "roles": ["reviewer"]}]
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(data))
    _production(monkeypatch, tmp_path, TETHER_POLICY_FILE=str(policy_file))
    assert main(["ui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plaintext password" in err and "erin-pass" not in err


@pytest.mark.parametrize("secret", ["", "short-secret"])
def test_production_refuses_a_default_or_short_session_secret(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    secret: str,
) -> None:
    _production(monkeypatch, tmp_path)
    monkeypatch.setenv("TETHER_SESSION_SECRET", secret)
    assert main(["ui"]) == 2
    assert "TETHER_SESSION_SECRET" in capsys.readouterr().err


def test_production_starts_with_hashed_private_logins(tmp_path: Path) -> None:
    data = yaml.safe_load(DEV_POLICY.read_text())
    hashed = PasswordHasher().hash("erin-private")
    data["reviewers"] = [{"name": "erin", "password_hash": hashed, "roles": ["reviewer"]}]
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(data))
    settings = Settings.from_env(
        {
            "TETHER_ENV": "production",
            "TETHER_HOME": str(tmp_path),
            "TETHER_SESSION_SECRET": LONG_SECRET,
            "TETHER_POLICY_FILE": str(policy_file),
            "TETHER_AUDIT_KEY": "a" * 64,
            "TETHER_PII_KEY": "b" * 64,
        }
    )
    assert create_app(settings) is not None


def test_the_dev_policy_holds_no_plaintext_password() -> None:
    for reviewer in yaml.safe_load(DEV_POLICY.read_text())["reviewers"]:
        assert "password" not in reviewer
        assert reviewer["password_hash"].startswith("$argon2id$")


def test_hash_password_prints_an_argon2_hash_of_a_piped_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert main(["hash-password"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("$argon2id$")
    assert PasswordHasher().verify(printed, "correct horse")


async def _sign_in(http: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    page = await http.get("/login")
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    token = page.text[start : page.text.index('"', start)]
    return await http.post(
        "/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"}
    )


async def test_logins_are_throttled_per_name_even_with_the_right_password(
    app_client: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        assert (await _sign_in(app_client, "alice", "guess")).status_code == 401
    blocked = await _sign_in(app_client, "ALICE", "alice-dev")
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60
    basic = await app_client.get("/api/reviews", auth=("alice", "alice-dev"))
    assert basic.status_code == 429 and "Retry-After" in basic.headers
    # bob, from the same address, has failed 0 times by name but the address has 5 failures.


async def test_logins_are_throttled_per_address_across_names(
    store_settings: Settings, app_client: httpx.AsyncClient
) -> None:
    for n in range(5):
        wrong = await app_client.get("/api/reviews", auth=(f"user{n}", "guess"))
        assert wrong.status_code == 401
    assert (await app_client.get("/api/reviews", auth=("bob", "bob-dev"))).status_code == 429
    # The count lives in the store: a second replica on the same store refuses as well.
    replica = create_app(store_settings, policy=load_policy())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=replica), base_url="http://testserver"
    ) as other:
        assert (await other.get("/api/reviews", auth=("bob", "bob-dev"))).status_code == 429
    # Another address is not held back by this one's failures.
    elsewhere = create_app(store_settings, policy=load_policy())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=elsewhere, client=("10.0.0.9", 4000)),
        base_url="http://testserver",
    ) as remote:
        assert (await remote.get("/api/reviews", auth=("bob", "bob-dev"))).status_code == 200


def _cookie_payload(cookie: str) -> dict[str, Any]:
    body = cookie.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


async def test_the_session_cookie_carries_only_a_random_id_and_logout_revokes_it(
    app_client: httpx.AsyncClient,
) -> None:
    assert (await _sign_in(app_client, "bob", "bob-dev")).status_code == 303
    stolen = app_client.cookies["tether_session"]
    assert set(_cookie_payload(stolen)) == {"csrf", "sid"}  # nothing password-derived
    queue = await app_client.get("/")
    assert queue.status_code == 200
    marker = 'name="csrf_token" value="'
    start = queue.text.index(marker) + len(marker)
    token = queue.text[start : queue.text.index('"', start)]
    assert (await app_client.post("/logout", data={"csrf_token": token})).status_code == 303
    # The attacker replays the cookie they copied before the logout: refused everywhere.
    replay = httpx.Cookies({"tether_session": stolen})
    async with httpx.AsyncClient(
        transport=app_client._transport, base_url="http://testserver", cookies=replay
    ) as attacker:
        page = await attacker.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert (await attacker.get("/api/reviews")).status_code == 401


async def test_every_response_has_the_security_headers(app_client: httpx.AsyncClient) -> None:
    for path in ("/login", "/api/reviews", "/static/tether.js", "/nowhere"):
        response = await app_client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, path
        script_src = next(part for part in csp.split(";") if "script-src" in part)
        assert "'unsafe-inline'" not in script_src, path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"], path
        assert "Strict-Transport-Security" not in response.headers, path  # plain http


async def test_hsts_when_served_over_https(tmp_path: Path) -> None:
    base = {"TETHER_HOME": str(tmp_path)}
    for environ, forwarded, expected in [
        ({"TETHER_PUBLIC_URL": "https://review.example"}, {}, True),
        ({"TETHER_TRUST_PROXY": "true"}, {"X-Forwarded-Proto": "https"}, True),
        ({}, {"X-Forwarded-Proto": "https"}, False),  # an untrusted header is ignored
    ]:
        app = create_app(Settings.from_env(base | environ), policy=load_policy())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            response = await http.get("/login", headers=forwarded)
        assert ("Strict-Transport-Security" in response.headers) is expected, environ
    dispose_all()


# --- with the real Temporal dev server: what a started run records as its requester -------------


async def _started_input(client: Client, run_id: str) -> dict[str, Any]:
    history = await client.get_workflow_handle(run_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    data: dict[str, Any] = json.loads(started.input.payloads[0].data)
    return data


@pytest.mark.integration
async def test_the_api_starts_a_run_as_the_authenticated_login(
    client: Client, settings: Settings
) -> None:
    app = create_app(settings, client=client, policy=load_policy())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    ) as http:
        # The login's name in another case is the same login, and the requester is its name.
        started = await http.post("/api/runs", json=_start(), auth=("ALICE", "alice-dev"))
    assert started.status_code == 201, started.text
    recorded = await _started_input(client, started.json()["run_id"])
    assert (recorded["requester"], recorded["tenant"]) == ("alice", "default")


@pytest.mark.integration
async def test_a_login_of_another_tenant_cannot_read_a_runs_status(
    client: Client, settings: Settings
) -> None:
    app = create_app(settings, client=client, policy=_with_dave(load_policy()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    ) as http:
        started = await http.post("/api/runs", json=_start(), auth=("alice", "alice-dev"))
        assert started.status_code == 201, started.text
        run_id = started.json()["run_id"]
        theirs = await http.get(f"/api/runs/{run_id}", auth=DAVE)
        nobodys = await http.get("/api/runs/no-such-run", auth=DAVE)
        own = await http.get(f"/api/runs/{run_id}", auth=("alice", "alice-dev"))
    # dave (globex) is told exactly what a run that does not exist would tell him.
    assert (theirs.status_code, nobodys.status_code) == (404, 404)
    assert theirs.json()["detail"] == f"no run {run_id!r}"
    assert nobodys.json()["detail"] == "no run 'no-such-run'"
    assert own.status_code != 404


@pytest.mark.integration
async def test_the_cli_starts_a_run_as_the_service_identity(
    client: Client, settings: Settings
) -> None:
    env = os.environ | {
        "TETHER_HOME": str(settings.home),
        "TETHER_TEMPORAL_ADDRESS": settings.temporal_address,
        "TETHER_TASK_QUEUE": settings.task_queue,
        "TETHER_SERVICE_IDENTITY": "ops-bot",
    }

    def tether(ticket: dict[str, str]) -> subprocess.CompletedProcess[str]:
        payload = json.dumps(_start(**ticket)["input"])
        return subprocess.run(
            [sys.executable, "-m", "tether.cli", "run", "support_triage", "--input", payload],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    named = await asyncio.to_thread(tether, {"requester": "bob"})
    assert named.returncode == 2 and named.stderr.count("\n") == 1, named.stderr
    assert "requester" in named.stderr
    done = await asyncio.to_thread(tether, {})
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[0]
    if run_id.startswith("{"):  # `tether run` may print one JSON document
        run_id = json.loads(done.stdout)["run_id"]
    assert (await _started_input(client, run_id))["requester"] == "ops-bot"
