#!/usr/bin/env bash
# Latent Lab set-up and entry points. Two commands do everything on a fresh Debian machine with python3:
#   ./run.sh app    create .venv if missing, install the requirements, start the app on port 8501
#   ./run.sh test   the same set-up plus Debian's chromium for the browser tests, then the whole test suite
#   ./run.sh cluster up [--replicas N] | down | status
#                   past one machine: Ray (head + a second node), N app replicas and nginx on port 8080, all on
#                   this machine (cluster/cluster.sh; the README's "Serving a large course" spreads it over several)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"
ARTIFACTS="$PWD/test-artifacts"

ensure_venv() {
  if [ ! -x "$PY" ]; then
    echo "==> creating $VENV"
    python3 -m venv "$VENV"
  fi
  # Reinstall only when requirements.txt changed since the last successful install.
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing requirements (torch is large: the first time takes a few minutes)"
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > "$stamp"
  fi
}

ensure_chromium() {
  # Playwright drives Debian's chromium: `playwright install` cannot download browsers on these machines.
  if [ -x /usr/bin/chromium ]; then return; fi
  echo "==> installing Debian's chromium for the browser tests"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
}

ensure_cluster_tools() {
  # Ray (PyPI, requirements-cluster.txt) and Debian's nginx: only for the cluster mode and its tests, never for
  # the single-machine app.
  local stamp="$VENV/.requirements-cluster.sha256" want
  want=$(sha256sum requirements-cluster.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing Ray for the cluster mode (requirements-cluster.txt)"
    "$PY" -m pip install --quiet --disable-pip-version-check -r requirements-cluster.txt
    echo "$want" > "$stamp"
  fi
  if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "==> installing Debian's nginx for the cluster mode"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    # the package's own service is not started (policy-rc.d on containers; the cluster runs its own nginx)
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx >/dev/null
  fi
}

case "${1:-}" in
  app)
    ensure_venv
    echo "==> Latent Lab: open http://localhost:8501"
    exec "$PY" -m streamlit run app.py --server.headless true --server.port 8501
    ;;
  test-cluster)
    ensure_venv
    ensure_chromium
    ensure_cluster_tools
    mkdir -p "$ARTIFACTS"
    shift
    LATENT_LAB_ARTIFACTS="$ARTIFACTS" "$PY" -m pytest -m cluster tests/cluster "$@"
    ;;
  test)
    ensure_venv
    ensure_chromium
    ensure_cluster_tools  # tests/cluster brings up the local cluster
    mkdir -p "$ARTIFACTS"
    shift
    status=0
    # pytest.ini sets testpaths = tests: no arguments runs everything, arguments pick tests.
    # Two pytest-xdist workers: the browser tests (one group, tests/conftest.py) on one, the rest on the other.
    # LATENT_LAB_TEST_WORKERS=0 runs everything in this one process instead.
    LATENT_LAB_ARTIFACTS="$ARTIFACTS" "$PY" -m pytest -n "${LATENT_LAB_TEST_WORKERS:-2}" --dist loadgroup "$@" \
      || status=$?
    echo "==> screenshots of every page: $ARTIFACTS/screenshots"
    exit $status
    ;;
  cluster)
    ensure_venv
    ensure_cluster_tools
    shift
    exec bash cluster/cluster.sh "$@"
    ;;
  *)
    echo "usage: ./run.sh app | ./run.sh test [pytest args] | ./run.sh test-cluster | ./run.sh cluster up [--replicas N] | down | status" >&2
    exit 2
    ;;
esac
