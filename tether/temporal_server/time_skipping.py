"""The Java time-skipping test server: fetched once from Maven Central, started for tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tether.temporal_server.cache import cache_root, exclusive_lock, log_tail

# scripts/temporal-test-server reads this line to find the classpath; keep it on one line.
TEMPORAL_TEST_SERVER_VERSION = "1.38.0"
# The JVM needs a few seconds on a small machine; the SDK's default assumes a native binary.
TIME_SKIPPING_STARTUP_TIMEOUT = timedelta(seconds=90)


def ensure_time_skipping_server() -> Path | None:
    """Fetch the Java time-skipping test server once (Maven Central) and return its wrapper script.

    The jars of ``io.temporal:temporal-test-server`` and its runtime dependencies are copied to
    ``<cache>/temporal-test-server-<version>/lib``; ``scripts/temporal-test-server`` runs them.

    Returns:
        The wrapper's path, or ``None`` when Java, Maven or the wrapper (outside a source
        checkout) is missing or the fetch failed; then the SDK's own download is the fallback.
    """
    # Computed here, not at import: workflow sandboxes re-import this module and forbid resolve().
    wrapper = Path(__file__).resolve().parents[2] / "scripts" / "temporal-test-server"
    if not wrapper.is_file() or shutil.which("java") is None:
        return None
    lib = time_skipping_server_lib()
    if lib.is_dir():
        return wrapper
    mvn = shutil.which("mvn")
    if mvn is None:
        return None
    lib.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lib.parent / ".lock"):
        if lib.is_dir():
            return wrapper
        pom = lib.parent / "pom.xml"
        pom.write_text(_TEST_SERVER_POM.format(version=TEMPORAL_TEST_SERVER_VERSION))
        staging = Path(tempfile.mkdtemp(prefix=".lib-", dir=lib.parent))
        log_path = lib.parent / "fetch.log"
        try:
            with log_path.open("wb") as log:
                result = subprocess.run(
                    [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
                     "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip
            if result.returncode != 0:
                print(
                    f"tether: fetching the time-skipping server failed: {log_tail(log_path, 3)}",
                    file=sys.stderr,
                )
                return None
            os.replace(staging, lib)  # the folder appears only once complete
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return wrapper


def time_skipping_server_lib() -> Path:
    """Return the folder holding the time-skipping server's jars (whether or not it exists)."""
    return cache_root() / f"temporal-test-server-{TEMPORAL_TEST_SERVER_VERSION}" / "lib"


async def start_time_skipping_environment() -> WorkflowEnvironment:
    """Start a time-skipping environment on the Java test server, or the SDK's download."""
    wrapper = await asyncio.to_thread(ensure_time_skipping_server)
    cache_root().mkdir(parents=True, exist_ok=True)
    return await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(wrapper) if wrapper else None,
        test_server_startup_timeout=TIME_SKIPPING_STARTUP_TIMEOUT,
        download_dest_dir=str(cache_root()),
    )


_TEST_SERVER_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.tether</groupId>
  <artifactId>temporal-test-server-classpath</artifactId>
  <version>0</version>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""
