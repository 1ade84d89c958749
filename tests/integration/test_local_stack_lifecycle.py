"""`make run` on real processes (the launcher, DynamoDB Local, SeaweedFS), 127.0.0.1 only, every wait bounded:
stopped with Ctrl-C it leaves no listener within 3 seconds and starts again at once on the same port; killed
with SIGKILL, its servers notice and stop by themselves."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import psutil
import pytest
import requests

from infra.components import free_port, port_is_free
from infra.template import ROOT

pytestmark = pytest.mark.integration

READY_LINE = "Ctrl-C stops everything."
START_TIMEOUT = 180
CTRL_C_BUDGET = 3.0
ORPHAN_BUDGET = 10.0


def _time_wait_on(port: int) -> bool:
    return any(
        connection.status == psutil.CONN_TIME_WAIT and connection.laddr.port == port
        for connection in psutil.net_connections("tcp4")
    )


def _listening(ports: set[int]) -> set[int]:
    return {
        connection.laddr.port
        for connection in psutil.net_connections("tcp4")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port in ports
    }


class _Closing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.send_header("connection", "close")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


def test_the_port_probe_lets_time_wait_connections_pass_and_sees_a_listener():
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Closing)  # binds with SO_REUSEADDR, as the gateway does
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for _ in range(3):
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 204
    assert not port_is_free(port), "a listener holds the port"
    server.shutdown()
    server.server_close()

    assert _time_wait_on(port), "the server closed first: its side of each connection waits in TIME_WAIT"
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the probe did before: refused for a minute
    assert port_is_free(port)
    HTTPServer(("127.0.0.1", port), _Closing).server_close()  # and the server binds indeed


class Launcher:
    """`python -m infra.run` (what make run starts) on its own data folder and a free port."""

    def __init__(self, local_dir: Path, port: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.run", "--port", str(port), "--local-dir", str(local_dir)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self.ready = False
        self._decided = threading.Event()  # ready, or stopped before
        threading.Thread(target=self._read, daemon=True).start()
        self._decided.wait(START_TIMEOUT)
        if not self.ready:
            self.process.kill()  # its servers follow it (what the last test shows)
            self.process.wait(timeout=10)
            pytest.fail(f"make run did not start (or not within {START_TIMEOUT} s):\n{''.join(self.output)[-3000:]}")
        self.tree = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        self.ports = {
            connection.laddr.port
            for process in self.tree
            for connection in process.net_connections("tcp4")
            if connection.status == psutil.CONN_LISTEN
        }

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if READY_LINE in line:
                self.ready = True
                self._decided.set()
        self._decided.set()

    @property
    def servers(self) -> list[psutil.Process]:
        return self.tree[1:]

    def kill(self) -> None:
        """Whatever is left of this run, however the test ended."""
        for process in self.tree:
            if process.is_running():
                process.kill()
        self.process.wait(timeout=10)


def _gone_within(seconds: float, check) -> float | None:
    """Seconds until `check()` holds, or None if it still does not after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _alive(processes: list[psutil.Process]) -> list[str]:
    return [f"{p.pid} {p.name()}" for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_ctrl_c_closes_every_listener_within_3_seconds_and_make_run_starts_again_at_once(tmp_path):
    port = free_port()
    first = Launcher(tmp_path, port)
    try:
        assert port in first.ports and len(first.ports) >= 4, first.ports  # gateway, event bus, DynamoDB, S3 ...
        assert {"java", "weed"} <= {process.name() for process in first.servers}
        for _ in range(3):
            answer = requests.get(f"http://127.0.0.1:{port}/v1/nowhere", headers={"connection": "close"}, timeout=10)
            assert answer.status_code == 404
        assert _time_wait_on(port)

        first.process.send_signal(signal.SIGINT)
        took = _gone_within(CTRL_C_BUDGET, lambda: not _listening(first.ports))
        assert took is not None, f"still listening {CTRL_C_BUDGET} s after Ctrl-C: {_listening(first.ports)}"
        assert first.process.wait(timeout=15) == 0
        assert not _alive(first.servers)
    finally:
        first.kill()

    assert _time_wait_on(port), "the restart below meets the old connections in TIME_WAIT"
    second = Launcher(tmp_path, port)  # at once, on the same port and data
    try:
        assert requests.get(f"http://127.0.0.1:{port}/v1/nowhere", timeout=10).status_code == 404
        second.process.send_signal(signal.SIGINT)
        assert second.process.wait(timeout=15) == 0
    finally:
        second.kill()


def test_servers_stop_by_themselves_when_the_launcher_is_killed(tmp_path):
    launcher = Launcher(tmp_path, free_port())
    servers = launcher.servers
    try:
        launcher.process.kill()
        launcher.process.wait(timeout=10)
        took = _gone_within(ORPHAN_BUDGET, lambda: not _alive(servers))
        assert took is not None, f"still running {ORPHAN_BUDGET} s after the launcher died: {_alive(servers)}"
        assert not _listening(launcher.ports)
    finally:
        launcher.kill()
