"""The local cluster as a load-test target: `./run.sh cluster up --replicas N` in a run folder of its own, behind
the same interface as bench/load_test.py's Server (url, process.pid, started, wait_healthy, probe, stop).

    server = ClusterServer(ROOT, user_dir, log_path, ttl=15, replicas=2)   # nginx on a free port, Ray head + 1 node
    server.url                  # nginx
    server.pids                 # {"ray-head": pid, "ray-node": pid, "replica-1": pid, ..., "nginx": pid}
    server.stop()               # ./run.sh cluster down; the replicas' logs appended to log_path

Ports are picked free (outside Ray's worker port range), so a cluster a developer runs on 8080 is not disturbed.
There is no in-server probe here: probe() answers with an error, and the load test falls back to what it measures
from outside (memory from /proc, start order from the checkpoints).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_block(n: int, start: int) -> int:
    """The first port >= start from which n consecutive ports are free."""
    port = start
    while not all(_free(port + i) for i in range(n)):
        port += n
    return port


class ClusterServer:
    def __init__(self, root: Path, user_dir: Path, log_path: Path, ttl: int, replicas: int = 2):
        self.root, self.user_dir, self.log_path = Path(root), Path(user_dir), Path(log_path)
        self.probe_dir = None
        self.replicas = replicas
        self.run_dir = Path(tempfile.mkdtemp(prefix="load_test_cluster_")) / "run"
        ray_port, replica_port, http_port = free_block(6, 36380), free_block(replicas, 38601), free_block(1, 38080)
        self.env = {**os.environ, "LATENT_LAB_CLUSTER_DIR": str(self.run_dir), "LATENT_LAB_USER_DIR": str(user_dir),
                    "LATENT_LAB_CLUSTER_PORT": str(http_port), "LATENT_LAB_REPLICA_PORT": str(replica_port),
                    "LATENT_LAB_RAY_PORT": str(ray_port),
                    # Streamlit reads its options from STREAMLIT_<SECTION>_<OPTION> as well as from flags
                    "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(ttl)}
        self.env.pop("LATENT_LAB_RAY_ADDRESS", None)
        self.url = f"http://127.0.0.1:{http_port}"
        self.cmd = f"./run.sh cluster up --replicas {replicas} (nginx {self.url}, Ray 127.0.0.1:{ray_port})"
        self.capacity = 2 * int(self.env.get("LATENT_LAB_RAY_NODE_CPUS", "1"))  # the head and one node
        self.started = time.monotonic()
        up = subprocess.run(["./run.sh", "cluster", "up", "--replicas", str(replicas)], cwd=self.root, env=self.env,
                            capture_output=True, text=True, timeout=900)
        self.up_seconds = time.monotonic() - self.started
        self.log_path.write_text(up.stdout + up.stderr)
        if up.returncode != 0:
            self.stop()
            raise RuntimeError(f"cluster up failed: {(up.stdout + up.stderr)[-2000:]}")
        self.pids = {name: int(pid) for name, pid in
                     (line.split() for line in (self.run_dir / "pids").read_text().splitlines() if line.strip())}
        self.process = SimpleNamespace(pid=self.pids["replica-1"])  # Server's interface: the main sampler's target

    def replica_pids(self) -> dict[str, int]:
        return {name: pid for name, pid in self.pids.items() if name.startswith("replica")}

    def wait_healthy(self, timeout: float = 90.0) -> float:
        return self.up_seconds  # `cluster up` returns once nginx and every replica answer their health check

    def probe(self, step: str, timeout: float = 60.0) -> dict:
        return {"step": step, "error": "no in-server probe in cluster mode"}

    def nginx_summary(self) -> dict:
        """From nginx's access log: websocket sessions per replica, HTTP statuses, uploads."""
        try:
            log = (self.run_dir / "logs" / "nginx-access.log").read_text(errors="replace")
        except OSError:
            return {}
        streams = Counter(re.findall(r'"GET /_stcore/stream HTTP/1\.1" \d+ \d+ upstream=(\S+)', log))
        statuses = Counter(re.findall(r'HTTP/1\.1" (\d{3}) ', log))
        return {"websocket_sessions_per_replica": dict(streams), "http_statuses": dict(statuses),
                "requests": sum(statuses.values())}

    def stop(self) -> None:
        try:
            down = subprocess.run(["./run.sh", "cluster", "down"], cwd=self.root, env=self.env, capture_output=True,
                                  text=True, timeout=180)
            summary = down.stdout + down.stderr
        except subprocess.TimeoutExpired as exc:
            summary = f"cluster down timed out: {exc}"
        with open(self.log_path, "a") as out:  # the replicas' logs, where the load test looks for tracebacks
            out.write(f"\n== cluster down ==\n{summary}\n")
            for path in sorted((self.run_dir / "logs").glob("replica-*.log")):
                out.write(f"\n== {path.name} ==\n{path.read_text(errors='replace')}")
            nginx_log = self.run_dir / "logs" / "nginx-error.log"
            if nginx_log.exists():
                out.write(f"\n== nginx-error.log ==\n{nginx_log.read_text(errors='replace')}")
        shutil.rmtree(self.run_dir.parent, ignore_errors=True)
