"""Obtaining the Temporal CLI binary: an override, ``PATH``, the cached build, or a Go build.

``None`` from ``find_temporal_cli`` means the SDK downloads its own dev server instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tether.core.errors import ConfigurationError, ServerUnreachableError
from tether.temporal_server.cache import cache_root, exclusive_lock, log_tail

TEMPORAL_CLI_VERSION = "1.5.1"
# The CLI is built with a newer SQLite driver than its own go.mod asks for. The dev server keeps
# one SQLite connection; with modernc.org/sqlite v1.34.1 (CLI 1.5.1's), a call whose deadline
# passed mid-query could leave that connection interrupted for good, and every later call failed
# with "interrupted (9)" until the server restarted (it took a CI run down). From v1.35.0 the
# driver drops an interrupted connection and opens a fresh one.
SQLITE_DRIVER_VERSION = "1.35.0"
_CLI_MODULE = "github.com/temporalio/cli"
_CLI_PACKAGE = f"{_CLI_MODULE}/cmd/temporal"
_CLI_VERSION_VAR = f"{_CLI_MODULE}/temporalcli.Version"  # what `--version` prints
_SQLITE_MODULE = "modernc.org/sqlite"


def cached_cli_path() -> Path:
    """Return where the pinned CLI build lives (whether or not it exists yet)."""
    build = f"temporal-cli-{TEMPORAL_CLI_VERSION}-sqlite-{SQLITE_DRIVER_VERSION}"
    return cache_root() / build / "temporal"


def find_temporal_cli(build: bool = True) -> Path | None:
    """Find a Temporal CLI binary, building the pinned version with Go when allowed and possible.

    Args:
        build: Whether to build with Go when no binary is found (takes minutes the first time).

    Returns:
        The binary's path, or ``None`` when the SDK should download its own dev server.

    Raises:
        ConfigurationError: ``TETHER_TEMPORAL_CLI`` names a file that is not an executable.
    """
    override = os.environ.get("TETHER_TEMPORAL_CLI")
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigurationError(f"TETHER_TEMPORAL_CLI: {path} is not an executable file")
        return path
    on_path = shutil.which("temporal")
    if on_path:
        return Path(on_path)
    cached = cached_cli_path()
    if cached.is_file():
        return cached
    if not build:
        return None
    if go_binary() is None:
        return _older_build("Go is not installed to build the pinned CLI")
    try:
        return build_temporal_cli()
    except ServerUnreachableError as exc:
        older = _older_build(str(exc))  # offline, say, with only the build before the bump
        if older is not None:
            return older
        # A broken Go setup must not block a laptop that can still use the SDK's download.
        print(f"tether: {exc}; falling back to the SDK's dev server download", file=sys.stderr)
        return None


def _older_build(why: str) -> Path | None:
    """The pinned CLI as built before the SQLite driver bump (same CLI, the driver it shipped),
    used with a warning when the pinned build cannot be made; None when there is none."""
    older = cache_root() / f"temporal-cli-{TEMPORAL_CLI_VERSION}" / "temporal"
    if not older.is_file():
        return None
    print(
        f"tether: {why}; using the older build {older} (its SQLite driver can stop answering "
        "after cancelled calls until restarted; build again with Go online, then delete it)",
        file=sys.stderr,
    )
    return older


def build_temporal_cli() -> Path:
    """Build the pinned Temporal CLI with Go into the cache; safe against concurrent callers.

    Returns:
        The path of the built (or concurrently built) binary.

    Raises:
        ServerUnreachableError: Go is missing or the build failed; the message ends with the
            last lines of the build log.
    """
    go = go_binary()
    if go is None:
        raise ServerUnreachableError("cannot build the Temporal CLI: `go` was not found")
    target = cached_cli_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / ".lock"):
        if target.is_file():  # another process built it while we waited for the lock
            return target
        for stale in target.parent.glob(".build-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        print(
            f"building the Temporal CLI v{TEMPORAL_CLI_VERSION} with Go "
            "(first time only, a few minutes)...",
            file=sys.stderr,
            flush=True,
        )
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        log_path = target.parent / "build.log"
        try:
            built = _build_in(staging, go, log_path)
            os.replace(built, target)  # atomic: a reader never sees a half-written binary
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _build_in(staging: Path, go: str, log_path: Path) -> Path:
    """Build the pinned CLI with the pinned SQLite driver in a throwaway module under ``staging``.

    ``go install pkg@version`` cannot change a dependency's version, so a scratch module requires
    both, and ``go build`` builds the CLI's main package from it.
    """
    (staging / "go.mod").write_text("module tether.local/temporal-cli-build\n\ngo 1.25.0\n")
    flags = f"{os.environ.get('GOFLAGS', '')} -mod=mod".strip()  # the user's own flags kept
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": flags, "GOWORK": "off"}
    built = staging / "temporal"
    steps = [
        [go, "get", f"{_CLI_PACKAGE}@v{TEMPORAL_CLI_VERSION}",
         f"{_SQLITE_MODULE}@v{SQLITE_DRIVER_VERSION}"],
        [go, "build", "-o", str(built),
         f"-ldflags=-s -w -X {_CLI_VERSION_VAR}={TEMPORAL_CLI_VERSION}", _CLI_PACKAGE],
    ]  # fmt: skip
    with log_path.open("wb") as log:
        for step in steps:
            result = subprocess.run(
                step, cwd=staging, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                break
    if result.returncode != 0 or not built.is_file():
        raise ServerUnreachableError(
            f"building the Temporal CLI failed (exit {result.returncode}): {log_tail(log_path, 5)}"
        )
    return built


def go_binary() -> str | None:
    """Return the ``go`` executable, or ``None`` when Go is not installed."""
    # The official tarball installs to /usr/local/go, often missing from non-login shells' PATH.
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if default.is_file() else None
