"""The local stack under load, in a process of its own so the load generator's threads do not share its GIL.

The child (`python -m tests.load.stack <workdir>`) starts `infra.local_stack.LocalStack` on 127.0.0.1 with
in-memory DynamoDB Local, loads the demo data of `make run`, writes `ready.json` (the API's URL and the
environment its functions run with) and serves until its standard input closes.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.template import ROOT

READY = "ready.json"
LOG = "stack.log"
LOOPBACK = "127.0.0.1"


class StackFailed(RuntimeError):
    pass


def loopback_only(ready: dict[str, Any]) -> None:
    """Refuse to send a single request anywhere but 127.0.0.1: the API and every endpoint its functions use."""
    urls = [ready["base_url"]]
    urls += [value for name, value in ready["environment"].items() if name.startswith("AWS_ENDPOINT_URL")]
    elsewhere = [url for url in urls if urlsplit(url).hostname != LOOPBACK]
    if elsewhere:
        raise StackFailed(f"the load test only talks to {LOOPBACK}; refusing {', '.join(elsewhere)}")


class StackProcess:
    """Parent side: start the child, wait until it is ready, stop it (only this child, by its own handle)."""

    def __init__(self, workdir: Path, start_timeout: float = 240):
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> dict[str, Any]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready_path = self.workdir / READY
        ready_path.unlink(missing_ok=True)
        log = (self.workdir / LOG).open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.load.stack", str(self.workdir)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while not ready_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.workdir / LOG).read_text(errors="replace")[-3000:]
                self.stop()
                raise StackFailed(f"the local stack did not start (see {self.workdir / LOG}):\n{tail}")
            time.sleep(0.2)
        ready = json.loads(ready_path.read_text())
        loopback_only(ready)
        return ready

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.process.stdin:
            self.process.stdin.close()  # the child stops its stack and exits
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(workdir: Path) -> None:
    """Child side."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from infra.local_stack import LocalStack
    from infra.seed import load_demo_data

    stack = LocalStack(workdir / "stack", port=0, in_memory=True, prefix="msp-load", issuer_dir=workdir / "issuer")
    stack.start()
    try:
        summary = load_demo_data(stack)
        ready = {"base_url": stack.base_url, "environment": stack.environment, "seed": summary}
        temporary = workdir / f"{READY}.tmp"
        temporary.write_text(json.dumps(ready))
        temporary.replace(workdir / READY)
        sys.stdin.read()  # until the parent closes our standard input
    finally:
        stack.stop()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
