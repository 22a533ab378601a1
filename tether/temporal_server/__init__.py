"""Obtain and run a real Temporal server locally: the dev server (CLI) and the time-skipping server.

The Temporal CLI is looked up in this order: ``TETHER_TEMPORAL_CLI`` → ``temporal`` on ``PATH`` →
the per-machine cached build → a build with Go from the Go module proxy (the pinned CLI with the
pinned SQLite driver; see ``cli_binary``) → ``None``, meaning the
SDK downloads its own dev server (which works on any internet-connected laptop, without Go).

Run ``python -m tether.temporal_server ensure`` to obtain the CLI up front and print its path, and
``python -m tether.temporal_server ensure-test-server`` to fetch the Java time-skipping server.
"""

from tether.temporal_server.cache import cache_root
from tether.temporal_server.cli_binary import (
    SQLITE_DRIVER_VERSION,
    TEMPORAL_CLI_VERSION,
    build_temporal_cli,
    cached_cli_path,
    find_temporal_cli,
)
from tether.temporal_server.dev_server import SERVER_TUNING, DevServer
from tether.temporal_server.time_skipping import (
    TEMPORAL_TEST_SERVER_VERSION,
    TIME_SKIPPING_STARTUP_TIMEOUT,
    ensure_time_skipping_server,
    start_time_skipping_environment,
    time_skipping_server_lib,
)

__all__ = [
    "SERVER_TUNING",
    "SQLITE_DRIVER_VERSION",
    "TEMPORAL_CLI_VERSION",
    "TEMPORAL_TEST_SERVER_VERSION",
    "TIME_SKIPPING_STARTUP_TIMEOUT",
    "DevServer",
    "build_temporal_cli",
    "cache_root",
    "cached_cli_path",
    "ensure_time_skipping_server",
    "find_temporal_cli",
    "start_time_skipping_environment",
    "time_skipping_server_lib",
]
