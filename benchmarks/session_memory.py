"""How much memory does one student's session hold? Open every notebook in turn, keep every kernel.

A student on Binder (about 2 GB) opens 00, runs it to the end, opens 01, and so on, and closes
nothing. This script does the same against a real JupyterLab server: for every numbered notebook
(``notebooks/NN_*.ipynb``, so new ones are picked up) it starts a kernel through the server's
sessions API, as opening the notebook does, runs every code cell to the end and keeps the kernel.
It samples memory every 50 ms and prints, per notebook, the kernel's peak and residual memory and
what the whole session holds after it (the server plus every kernel still alive).

Memory is reported two ways, in MB (10^6 bytes):

* RSS summed over processes: what ``top`` shows, but shared libraries are counted once per process;
* PSS summed (``/proc/PID/smaps_rollup``): shared pages split between the processes that map them,
  closer to what a container's memory limit counts.

``--cull-idle S`` starts the server with the culling settings of ``binder/jupyter_server_config.json``
but an idle timeout of S seconds, and ``--pace P`` waits P seconds after each notebook (a student
reading it). Binder's timeout is long and a student's pace is minutes; keep their ratio to see the
effect in minutes of benchmark instead of an hour.

    python benchmarks/session_memory.py                                # every kernel kept (Linux only)
    python benchmarks/session_memory.py --cull-idle 85 --pace 25       # with Binder's culling, time-scaled
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER_CONFIG = ROOT / "binder" / "jupyter_server_config.json"
MB = 1e6


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process in bytes; (0, 0) once it is gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    fields = {line.split(":")[0]: line.split()[1] for line in rollup if line.startswith(("Rss:", "Pss:"))}
    return float(fields.get("Rss", 0)) * 1024, float(fields.get("Pss", 0)) * 1024


def kernel_pid(connection_file: Path, timeout: float = 60.0) -> int:
    """The kernel process started with ``connection_file`` (found by its command line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmd = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if str(connection_file).encode() in cmd:
                    return int(entry.name)
        time.sleep(0.2)
    raise RuntimeError(f"no kernel process uses {connection_file}")


class Sampler(threading.Thread):
    """Samples the server and the live kernels every 50 ms: per-pid peaks and the session's peak."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True)
        self.server_pid, self.kernels, self.peak = server_pid, {}, {}
        self.session_peak = (0.0, 0.0)
        self.stop = threading.Event()

    def totals(self) -> tuple[float, float, int]:
        """(RSS, PSS, kernels alive) of the server plus every kernel still running."""
        rss = pss = 0.0
        alive = 0
        for pid in [self.server_pid, *self.kernels.values()]:
            r, p = memory(pid)
            rss, pss = rss + r, pss + p
            alive += pid != self.server_pid and r > 0
        return rss, pss, alive

    def run(self) -> None:
        while not self.stop.is_set():
            for name, pid in list(self.kernels.items()):
                self.peak[name] = max(self.peak.get(name, 0.0), memory(pid)[0])
            rss, pss, _ = self.totals()
            self.session_peak = (max(self.session_peak[0], rss), max(self.session_peak[1], pss))
            time.sleep(0.05)


def run_cells(connection_file: Path, notebook: Path, timeout: float) -> list[str]:
    """Run every code cell of ``notebook`` in the kernel; return the errors (``ename: evalue``)."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(connection_file))
    client.load_connection_file()
    client.start_channels(hb=False)  # no heartbeat: on a busy machine a late beat is not a dead kernel
    errors: list[str] = []

    def on_output(msg: dict) -> None:
        if msg["msg_type"] == "error":
            errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    try:
        asked = client.kernel_info()
        while client.get_shell_msg(timeout=120)["parent_header"].get("msg_id") != asked:
            pass
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code" and "".join(cell["source"]).strip():
                client.execute_interactive("".join(cell["source"]), timeout=timeout, output_hook=on_output)
    finally:
        client.stop_channels()
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cull-idle", type=float, default=0, help="cull kernels idle this many seconds (0: never)")
    ap.add_argument("--pace", type=float, default=0, help="seconds to wait after each notebook")
    ap.add_argument("--cell-timeout", type=float, default=300)
    args = ap.parse_args()
    if not Path("/proc/self/smaps_rollup").exists():
        print("error: this benchmark reads /proc/PID/smaps_rollup (Linux only).", file=sys.stderr)
        return 2

    base = Path(tempfile.mkdtemp(prefix="session-memory-"))
    shutil.copytree(ROOT / "notebooks", base / "notebooks", ignore=shutil.ignore_patterns("workspace", ".ipynb*"))
    notebooks = sorted(p.name for p in (base / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    runtime = base / "runtime"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_DATA_DIR": str(base / "data"),
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1"]
    cmd += [f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={base}"]
    if args.cull_idle:
        cull = json.loads(BINDER_CONFIG.read_text())["MappingKernelManager"]
        scale = args.cull_idle / cull["cull_idle_timeout"]  # the check interval shrinks in proportion
        cull.update(cull_idle_timeout=int(args.cull_idle), cull_interval=max(1, round(cull["cull_interval"] * scale)))
        cmd += [f"--MappingKernelManager.{k}={v}" for k, v in cull.items()]
    url = f"http://127.0.0.1:{port}"

    def api(method: str, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        with urllib.request.urlopen(urllib.request.Request(url + path, data, headers, method=method), timeout=60) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    server = subprocess.Popen(cmd, env=env, cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = Sampler(server.pid)
    try:
        for _ in range(240):
            try:
                api("GET", "/api/status")
                break
            except OSError:
                time.sleep(0.5)
        sampler.start()
        time.sleep(1)
        print(f"server alone: RSS {memory(server.pid)[0] / MB:.0f} MB")
        print(f"{len(notebooks)} notebooks; culling: " + (f"idle > {args.cull_idle:g} s" if args.cull_idle else "off"))
        print(
            f"{'notebook':40} {'run':>6} {'kernel peak':>12} {'residual':>9} {'alive':>6} "
            f"{'session RSS':>12} {'session PSS':>12}"
        )
        for name in notebooks:
            session = api("POST", "/api/sessions", {"path": f"notebooks/{name}", "type": "notebook", "name": name})
            kernel_id = session["kernel"]["id"]  # type: ignore[index]
            cfile = runtime / f"kernel-{kernel_id}.json"
            sampler.kernels[name] = kernel_pid(cfile)
            t0 = time.perf_counter()
            errors = run_cells(cfile, base / "notebooks" / name, args.cell_timeout)
            took = time.perf_counter() - t0
            time.sleep(1)  # let the last outputs settle before reading the residual memory
            residual = memory(sampler.kernels[name])[0]
            if args.pace:
                time.sleep(args.pace)
            rss, pss, alive = sampler.totals()
            print(
                f"{name:40} {took:5.1f}s {sampler.peak.get(name, 0) / MB:9.0f} MB {residual / MB:6.0f} MB "
                f"{alive:6d} {rss / MB:9.0f} MB {pss / MB:9.0f} MB" + (f"  ERRORS: {errors}" if errors else "")
            )
        rss, pss, alive = sampler.totals()
        print(f"end of the session: {alive} kernels alive, RSS {rss / MB:.0f} MB, PSS {pss / MB:.0f} MB")
        print(f"session peak: RSS {sampler.session_peak[0] / MB:.0f} MB, PSS {sampler.session_peak[1] / MB:.0f} MB")
    finally:
        sampler.stop.set()
        server.terminate()  # the server shuts its kernels down
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        for pid in sampler.kernels.values():  # any kernel left behind, by its id
            if memory(pid)[0]:
                os.kill(pid, 9)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
