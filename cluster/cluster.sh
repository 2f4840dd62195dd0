#!/usr/bin/env bash
# The whole serving stack on one machine: a Ray head and a second Ray node, N Streamlit replicas, nginx in front.
#   ./run.sh cluster up [--replicas N]    start it (nginx on port 8080); pids and logs in runs/cluster/
#   ./run.sh cluster status               what runs, and each replica's health
#   ./run.sh cluster down                 stop all of it (nothing is left behind: checked)
# run.sh installs Ray (requirements-cluster.txt) and Debian's nginx first. Settings (environment):
#   LATENT_LAB_CLUSTER_DIR   run folder (pids, logs, nginx.conf)     default runs/cluster
#   LATENT_LAB_CLUSTER_PORT  nginx's port                            default 8080
#   LATENT_LAB_REPLICA_PORT  first replica's port (loopback only)    default 8601
#   LATENT_LAB_RAY_PORT      Ray head's port (+1..+5 for its other services)  default 6380
#   LATENT_LAB_USER_DIR      the shared model store                  default user_models/
#   LATENT_LAB_KEEP_MODELS   lockers (models found again on any replica)      default 1 here
#   LATENT_LAB_RAY_NODE_CPUS trainings each Ray node runs at once    default 1
#   LATENT_LAB_RAY_OBJECT_STORE_MB  per node                          default 256
# Every process started here carries LATENT_LAB_CLUSTER_ID=<run folder> in its environment (Ray's workers too, which
# leave the process groups started here): `down` finds and ends exactly those.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="$ROOT/.venv/bin/python"
RAY="$ROOT/.venv/bin/ray"
DIR="$(realpath -m "${LATENT_LAB_CLUSTER_DIR:-$ROOT/runs/cluster}")"
HTTP_PORT="${LATENT_LAB_CLUSTER_PORT:-8080}"
REPLICA_PORT="${LATENT_LAB_REPLICA_PORT:-8601}"
RAY_PORT="${LATENT_LAB_RAY_PORT:-6380}"
STORE="$(realpath -m "${LATENT_LAB_USER_DIR:-$ROOT/user_models}")"
NODE_CPUS="${LATENT_LAB_RAY_NODE_CPUS:-1}"
OBJECT_STORE_MB="${LATENT_LAB_RAY_OBJECT_STORE_MB:-256}"
RAY_TMP="/tmp/latent-lab-ray-$RAY_PORT"  # short: Ray's unix sockets live under it (108-byte path limit)
# nginx's temp folders: where its workers (nobody, when started as root) can reach them whatever the run folder's
# parents allow (a mkdtemp folder is 0700)
NGINX_TMP="/tmp/latent-lab-nginx-$HTTP_PORT"
COOKIE="latentlab_replica"
export LATENT_LAB_CLUSTER_ID="$DIR"
export RAY_USAGE_STATS_ENABLED=0
# Ray 2.60 turns token authentication on for a head that finds a token in ~/.ray (any local ray.init() leaves one)
# but not for a node joining it: decided here, the same for every piece. Off by default for this loopback-only
# cluster; across machines set RAY_AUTH_MODE=token and give every machine the token (README, "Serving a large course").
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # Ray's workers import vae_core from this checkout

say() { echo "==> $*"; }

# start NAME LOG CMD...: in a session of its own (its own process group), pid recorded
start() {
  local name=$1 log=$2
  shift 2
  setsid "$@" >"$log" 2>&1 < /dev/null &
  echo "$name $!" >> "$DIR/pids"
}

wait_for() {  # wait_for WHAT SECONDS TEST...
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  local name pid
  until "$@" >/dev/null 2>&1; do
    while read -r name pid; do  # a piece that died: say so at once, with its log's last lines
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "cluster: $name exited while waiting for $what; $DIR/logs/$name.log ends:" >&2
        tail -n 15 "$DIR/logs/$name.log" >&2
        return 1
      fi
    done < "$DIR/pids"
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: $what did not come up within ${seconds}s (logs: $DIR/logs)" >&2
      return 1
    fi
    sleep 0.5
  done
}

http_ok() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()' "$1"; }

cluster_pids() {  # every live process whose environment names this run folder
  local marker="LATENT_LAB_CLUSTER_ID=$DIR" pid
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    [ "$pid" = "$$" ] || [ "$pid" = "$PPID" ] && continue
    if grep -qzxF "$marker" "$env" 2>/dev/null; then
      # skip zombies and this script's own subshells
      [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = "Z" ] && continue
      grep -q "cluster/cluster.sh" "/proc/$pid/cmdline" 2>/dev/null && continue
      echo "$pid"
    fi
  done
}

up() {
  local replicas=2
  while [ $# -gt 0 ]; do
    case "$1" in
      --replicas) replicas="$2"; shift 2 ;;
      --replicas=*) replicas="${1#*=}"; shift ;;
      *) echo "usage: ./run.sh cluster up [--replicas N]" >&2; exit 2 ;;
    esac
  done
  if [ -s "$DIR/pids" ] && [ -n "$(cluster_pids)" ]; then
    echo "cluster: already running from $DIR (./run.sh cluster down first)" >&2
    exit 1
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR/logs" "$STORE"
  : > "$DIR/pids"
  local t0=$SECONDS
  local mb=$((OBJECT_STORE_MB * 1024 * 1024))

  say "Ray head on 127.0.0.1:$RAY_PORT ($NODE_CPUS CPU for training; the scheduler actor; the state API)"
  start ray-head "$DIR/logs/ray-head.log" "$RAY" start --head --block --disable-usage-stats \
    --node-ip-address 127.0.0.1 --port "$RAY_PORT" --num-cpus "$NODE_CPUS" --object-store-memory "$mb" \
    --temp-dir "$RAY_TMP" --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port $((RAY_PORT + 1)) \
    --dashboard-agent-listen-port $((RAY_PORT + 2)) --ray-client-server-port $((RAY_PORT + 3))
  wait_for "the Ray head" 180 grep -q "Ray runtime started" "$DIR/logs/ray-head.log"

  say "Ray node 2 ($NODE_CPUS CPU for training)"
  start ray-node "$DIR/logs/ray-node.log" "$RAY" start --block --disable-usage-stats \
    --address "127.0.0.1:$RAY_PORT" --node-ip-address 127.0.0.1 --num-cpus "$NODE_CPUS" \
    --object-store-memory "$mb" --dashboard-agent-listen-port $((RAY_PORT + 4))
  wait_for "the second Ray node" 180 grep -q "Ray runtime started" "$DIR/logs/ray-node.log"

  # The scheduler and its pool of trainers (one per training CPU of each node) now, not at the first Start: each
  # trainer imports torch once, here, and then takes one training after another.
  say "trainers: one per training CPU of each node (torch imported once, now)"
  "$PY" -m vae_core.ray_jobs warm --address "127.0.0.1:$RAY_PORT" --timeout 240 \
    > "$DIR/logs/warm.log" 2>&1 || { echo "cluster: the trainers did not start; $DIR/logs/warm.log ends:" >&2
                                     tail -n 15 "$DIR/logs/warm.log" >&2; exit 1; }
  say "$(tail -n 1 "$DIR/logs/warm.log")"

  # One cookie secret for every replica: Streamlit signs its XSRF cookie with it, so a student moved to another
  # replica (theirs was restarted) can still upload.
  local secret upstreams="" i port
  secret=$("$PY" -c 'import secrets; print(secrets.token_hex(24))')
  for ((i = 0; i < replicas; i++)); do
    port=$((REPLICA_PORT + i))
    say "replica $((i + 1)) on 127.0.0.1:$port"
    start "replica-$((i + 1))" "$DIR/logs/replica-$((i + 1)).log" env \
      LATENT_LAB_RAY_ADDRESS="127.0.0.1:$RAY_PORT" LATENT_LAB_USER_DIR="$STORE" \
      LATENT_LAB_KEEP_MODELS="${LATENT_LAB_KEEP_MODELS:-1}" PYTHONUNBUFFERED=1 \
      STREAMLIT_SERVER_COOKIE_SECRET="$secret" \
      "$PY" -m streamlit run app.py --server.headless true --server.address 127.0.0.1 --server.port "$port" \
      --browser.gatherUsageStats false
    upstreams+="        server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'
  done
  for ((i = 0; i < replicas; i++)); do
    wait_for "replica $((i + 1))" 180 http_ok "http://127.0.0.1:$((REPLICA_PORT + i))/_stcore/health"
  done

  say "nginx on port $HTTP_PORT"
  local max_body user_line=""
  max_body=$(sed -n 's/^maxUploadSize *= *\([0-9]*\).*/\1/p' .streamlit/config.toml | head -1)
  rm -rf "$NGINX_TMP"
  mkdir -p "$NGINX_TMP/body" "$NGINX_TMP/proxy" "$NGINX_TMP/fastcgi" "$NGINX_TMP/uwsgi" "$NGINX_TMP/scgi"
  if [ "$(id -u)" -eq 0 ]; then  # nginx's workers drop to nobody: only its temp folders need to be theirs
    user_line="user nobody nogroup;"
    chown -R nobody:nogroup "$NGINX_TMP"
  fi
  UPSTREAMS="$upstreams" "$PY" - "$DIR" "$HTTP_PORT" "${max_body:-200}" "$COOKIE" "$user_line" "$NGINX_TMP" <<'PYEOF'
import os, sys
d, port, body, cookie, user, tmp = sys.argv[1:7]
text = open("cluster/nginx.conf.template").read()
for key, value in {"DIR": d, "LISTEN": port, "MAX_BODY": body, "COOKIE": cookie, "USER": user, "TMP": tmp,
                   "UPSTREAMS": os.environ["UPSTREAMS"].rstrip("\n")}.items():
    text = text.replace(f"@{key}@", value)
open(os.path.join(d, "nginx.conf"), "w").write(text)
PYEOF
  local nginx
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  "$nginx" -t -q -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/logs/nginx-error.log"
  start nginx "$DIR/logs/nginx.log" "$nginx" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/logs/nginx-error.log" \
    -g "daemon off;"
  wait_for "nginx" 30 http_ok "http://127.0.0.1:$HTTP_PORT/_stcore/health"

  cat > "$DIR/env" <<ENVEOF
LATENT_LAB_RAY_ADDRESS=127.0.0.1:$RAY_PORT
LATENT_LAB_USER_DIR=$STORE
LATENT_LAB_CLUSTER_URL=http://127.0.0.1:$HTTP_PORT
RAY_DASHBOARD=http://127.0.0.1:$((RAY_PORT + 1))
ENVEOF
  say "up in $((SECONDS - t0)) s: open http://localhost:$HTTP_PORT ($replicas replicas; models in $STORE)"
  say "trainings in Ray's state: .venv/bin/ray list tasks --address 127.0.0.1:$RAY_PORT --filter state=RUNNING (train:<model name>)"
  say "the trainers (one per training CPU): .venv/bin/ray list actors --address 127.0.0.1:$RAY_PORT --filter state=ALIVE"
  say "stop everything: ./run.sh cluster down"
}

status() {
  if [ ! -s "$DIR/pids" ]; then echo "cluster: not running ($DIR)"; return; fi
  local name pid
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "$name $pid running"; else echo "$name $pid gone"; fi
  done < "$DIR/pids"
  echo "processes of this cluster: $(cluster_pids | wc -l)"
}

down() {
  local name pid left
  if [ -s "$DIR/pids" ]; then
    # nginx first (no new requests), then the replicas, then the Ray nodes (worker node before the head)
    for name in nginx replica ray-node ray-head; do
      while read -r n pid; do
        case "$n" in "$name"*) kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true ;; esac
      done < "$DIR/pids"
    done
  fi
  local deadline=$((SECONDS + 10))
  while [ -n "$(cluster_pids)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
  left=$(cluster_pids)
  if [ -n "$left" ]; then
    echo "cluster: $(echo "$left" | wc -l) process(es) still running 10 s after SIGTERM: killing them:" >&2
    # shellcheck disable=SC2086
    ps -o pid=,args= -p "$(echo $left | tr ' ' ',')" | cut -c1-100 >&2 || true
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 1
  fi
  left=$(cluster_pids)
  rm -f "$DIR/pids"
  rm -rf "$RAY_TMP" "$NGINX_TMP"
  if [ -n "$left" ]; then
    echo "cluster: could not stop: $left" >&2
    exit 1
  fi
  say "cluster stopped: no process left"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: ./run.sh cluster up [--replicas N] | down | status" >&2; exit 2 ;;
esac
