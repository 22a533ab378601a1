#!/usr/bin/env bash
# Install (Debian packages) and start the real services the test suite needs, run the command
# given as arguments, then stop them:
#   - Chromium for the browser tests (driven by Playwright; never a downloaded browser build)
#   - a throwaway PostgreSQL cluster for the PostgreSQL run of the store tests
# The Temporal dev server is started by the tests themselves (tests/conftest.py).
set -euo pipefail

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "test-services: $* missing and not root; install it (apt-get install $*)" >&2
    return 1
  fi
  if [ -z "${TETHER_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    export TETHER_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x /usr/bin/chromium ]; then
  echo "test-services: installing chromium" >&2
  apt_install chromium
fi

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PG_BIN" ]; then
  echo "test-services: installing postgresql" >&2
  apt_install postgresql
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

PG_DIR=$(mktemp -d /tmp/tether-pg.XXXXXX)
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then chown postgres "$PG_DIR"; fi
cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap cleanup EXIT
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U tether --auth=trust >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U tether tether_test
export TETHER_TEST_POSTGRES_URL="postgresql+psycopg://tether@127.0.0.1:$PG_PORT/tether_test"
echo "test-services: chromium ready; PostgreSQL on 127.0.0.1:$PG_PORT" >&2

"$@"
