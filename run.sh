#!/usr/bin/env bash
# Latent Lab set-up and entry points. Two commands do everything on a fresh Debian machine with python3:
#   ./run.sh app    create .venv if missing, install the requirements, start the app on port 8501
#   ./run.sh test   the same set-up plus Debian's chromium for the browser tests, then the whole test suite
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

case "${1:-}" in
  app)
    ensure_venv
    echo "==> Latent Lab: open http://localhost:8501"
    # `streamlit run app.py`, with Streamlit's old pages/-folder mode off from the start (see pages/_ui.py).
    exec "$PY" -c 'import sys
from streamlit.runtime.pages_manager import PagesManager
PagesManager.uses_pages_directory = False
from streamlit.web.cli import main
sys.exit(main())' run app.py --server.headless true --server.port 8501
    ;;
  test)
    ensure_venv
    ensure_chromium
    mkdir -p "$ARTIFACTS"
    shift
    status=0
    # pytest.ini sets testpaths = tests: no arguments runs everything, arguments pick tests.
    LATENT_LAB_ARTIFACTS="$ARTIFACTS" "$PY" -m pytest "$@" || status=$?
    echo "==> screenshots of every page: $ARTIFACTS/screenshots"
    exit $status
    ;;
  *)
    echo "usage: ./run.sh app | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
