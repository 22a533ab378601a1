"""``python -m tether.temporal_server ensure | ensure-test-server``: obtain a server up front."""

from __future__ import annotations

import argparse
import sys

from tether.core.errors import ConfigurationError, ServerUnreachableError
from tether.temporal_server.cli_binary import find_temporal_cli
from tether.temporal_server.time_skipping import ensure_time_skipping_server


def main(argv: list[str] | None = None) -> int:
    """Command line: ``ensure`` prints the CLI's path; ``ensure-test-server`` the wrapper's."""
    parser = argparse.ArgumentParser(prog="python -m tether.temporal_server")
    parser.add_argument("command", choices=["ensure", "ensure-test-server"])
    command = parser.parse_args(argv).command
    try:
        if command == "ensure":
            found = find_temporal_cli()  # builds with Go when it must (or says why not)
            if found is None:
                print(
                    "tether: no Temporal CLI and no Go to build one; the SDK will download "
                    "its dev server on first start",
                    file=sys.stderr,
                )
                return 0
        else:
            found = ensure_time_skipping_server()
            if found is None:
                print("tether: the time-skipping server needs java and mvn", file=sys.stderr)
                return 1
    except (ConfigurationError, ServerUnreachableError) as exc:
        print(f"tether: {exc}", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
