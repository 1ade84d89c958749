"""The whole local stack: storage components, tables and bucket from the template, the gateway."""

from __future__ import annotations

import json
import logging
import os
from contextlib import ExitStack
from pathlib import Path

import boto3

from infra.bucket_events import BucketNotifier
from infra.components import (
    REGION,
    DynamoDBLocal,
    LocalSqs,
    MotoBackend,
    SeaweedS3,
    aws_environment,
    serve_in_background,
    stop_together,
)
from infra.dev_issuer import DevIssuer
from infra.event_bus import LocalEventBus
from infra.gateway import Gateway, serve
from infra.lambda_runtime import AsyncInvocations, LambdaRuntime, LocalLambdaApi
from infra.outbox import LocalSes
from infra.provision import dev_secrets, provision
from infra.template import ROOT, LocalNames, load_template
from infra.user_pool import LocalUserPool

log = logging.getLogger("local-stack")

BACKENDS = ("dynamodb-local", "moto")


class LocalStack:
    """Starts in order, stops in reverse order, even when a start fails half way."""

    def __init__(
        self,
        workdir: Path,
        *,
        backend: str = "dynamodb-local",
        port: int = 3000,
        in_memory: bool = False,
        prefix: str = "msp-local",
        issuer_dir: Path | None = None,
        async_time_scale: float = 1.0,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.workdir = workdir
        self.backend = backend
        self.port = port
        self.in_memory = in_memory
        # Lambda's waits between the attempts of a failed asynchronous invocation, and its event ages, times this.
        self.async_time_scale = async_time_scale
        self.template = load_template()
        self.names = LocalNames(self.template, prefix)
        self.issuer = DevIssuer(issuer_dir or workdir / "dev-issuer")
        self._exit = ExitStack()
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # The functions' failure queues: moto's SQS in its own process, whichever the storage backend.
        sqs = LocalSqs(self.workdir / "sqs")
        if self.backend == "moto":
            moto = MotoBackend()
            self._exit.callback(moto.stop)
            self._exit.callback(sqs.stop)
            moto.start()
            sqs.start()
            dynamodb_endpoint = s3_endpoint = moto.endpoint
        else:
            dynamodb = DynamoDBLocal(self.workdir / "dynamodb", in_memory=self.in_memory)
            s3 = SeaweedS3(self.workdir / "s3")
            self._exit.callback(stop_together, dynamodb, s3, sqs)
            dynamodb.start()
            s3.start()
            sqs.start()
            dynamodb_endpoint, s3_endpoint = dynamodb.endpoint, s3.endpoint
        self.environment = (
            aws_environment(dynamodb_endpoint, s3_endpoint)
            | {"AWS_ENDPOINT_URL_SQS": sqs.endpoint}
            | self.names.environment()
            | dev_secrets(self.template, self.names, self.workdir / "secrets")
        )
        os.environ.update(self.environment)
        provision(self.template, self.names)
        self.runtime = LambdaRuntime(self.template)
        # Asynchronous invocations, retried as Lambda retries them; what still fails goes to the function's queue.
        self.runtime.asynchronous = AsyncInvocations(self.runtime, self.send_failure_record, self.async_time_scale)
        self.runtime.asynchronous.start()
        self._exit.callback(self.runtime.asynchronous.stop)
        # Decision events: boto3's PutEvents reaches the local bus, which invokes the rule targets;
        # SendEmail reaches the local SES, which writes each message as a file in the outbox.
        self.events = LocalEventBus(self.runtime, self.template.event_rules, self.names.by_logical_id)
        self._exit.callback(self.events.stop)
        self.outbox = self.workdir / "outbox"
        self.ses = LocalSes(self.outbox)
        self._exit.callback(self.ses.stop)
        # The token trigger asks Cognito for a user's MFA settings: the users the dev issuer signed in.
        self.user_pool = LocalUserPool(self.issuer.users_path)
        self._exit.callback(self.user_pool.stop)
        # Invoke (asynchronous): a job's continuation, and make redrive.
        lambda_api = LocalLambdaApi(self.runtime)
        self._exit.callback(lambda_api.stop)
        local_only = {
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.events.start(),
            "AWS_ENDPOINT_URL_SESV2": self.ses.start(),
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": self.user_pool.start(),
            "AWS_ENDPOINT_URL_LAMBDA": lambda_api.start(),
        }
        self.environment |= local_only
        os.environ.update(local_only)
        self.notifier = BucketNotifier(self.runtime, self.template.bucket_triggers, self.names.by_logical_id)
        self.notifier.start()
        self._exit.callback(self.notifier.stop)
        # The reviewers' page under /admin/, the patients' page everywhere else (the most specific prefix first).
        pages = {"/admin/": ROOT / "admin", "/": ROOT / "public"}
        self.access_log = self.workdir / "logs" / "api-access.log"
        self.gateway = Gateway(self.template, self.runtime, self.issuer, pages, access_log=self.access_log)
        self.server = serve(self.gateway, self.port)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        serve_in_background(self.server, "gateway")
        self._exit.callback(self.server.server_close)
        self._exit.callback(self.server.shutdown)

    def stop(self) -> None:
        self._exit.close()

    def queue_url(self, logical_id: str) -> str:
        """The URL of a template queue on the local SQS server."""
        client = boto3.client("sqs", region_name=REGION)
        return client.get_queue_url(QueueName=self.names.by_logical_id[logical_id])["QueueUrl"]

    def send_failure_record(self, queue: str, record: dict) -> None:
        """Where the runtime sends what a function failed: its on-failure queue."""
        client = boto3.client("sqs", region_name=REGION)
        client.send_message(QueueUrl=self.queue_url(queue), MessageBody=json.dumps(record))

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


# ---------------------------------------------------------------- connecting to a running stack
#
# `make run` writes where its servers listen, so another command (make tally) can use the same data without
# starting a second DynamoDB Local on the same files. No secret goes in it: the dev secrets stay in the
# workdir's secrets/ folder, which the other command reads the way the stack does.


def write_connection(stack: LocalStack, path: Path) -> None:
    document = {
        "pid": os.getpid(),
        "workdir": str(stack.workdir),
        "environment": {key: value for key, value in stack.environment.items() if not key.endswith("_DEV_SECRET")},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")


def read_connection(path: Path) -> dict[str, str]:
    """The environment of the stack described in `path`, its dev secrets included."""
    document = json.loads(path.read_text(encoding="utf-8"))
    template = load_template()
    environment = dict(document["environment"])
    secrets = dev_secrets(template, LocalNames(template, "local"), Path(document["workdir"]) / "secrets")
    return environment | secrets
