"""`make tally YEAR=2026 [REPAIR=1] [FINAL=1] [RUN_ID=...] [SYNTHETIC=n]`: the tally job's Lambda handler, run on
the local stack's data (.local/stack), printing its progress.

Which servers: if `make run` is running, this connects to its DynamoDB Local and S3 server (make run writes
where they listen in .local/connection.json and holds .local/run.lock). Otherwise it takes that lock and
starts them itself on the same data directory, then stops them: two DynamoDB Local servers must never open
the same files, and the lock is what tells whether one already has. Either way the data is make run's.

The handler is invoked as Lambda invokes it, with the template's timeout. On AWS it re-invokes itself when it
stops for time; locally nothing can, so this loop invokes it again with the run id it answered, until the run
is complete. The report's files are copied to .local/reports/<year>/<run id>/ to open them in a spreadsheet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from infra.template import ROOT, load_template

FUNCTION = "TallySessionsFunction"
_STANDARD_RECORD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _readable_formatter():
    """Powertools' formatter (the logger appends Lambda context keys to it), printing one readable line."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    class ReadableLog(LambdaPowertoolsFormatter):
        def format(self, record: logging.LogRecord) -> str:
            return _readable(record)

    return ReadableLog()


def _readable(record: logging.LogRecord) -> str:
    """Time, level, message, then the log line's own fields as key=value."""
    fields = {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_RECORD_FIELDS and not key.startswith("_") and key != "xray_trace_id"
    }
    extra = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    moment = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
    return f"{moment} {record.levelname.lower():7s} {record.getMessage()}  {extra}".rstrip()


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make tally", description=__doc__.split("\n\n")[0])
    parser.add_argument("--year", type=int, default=None, help="year to tally (default: this year)")
    parser.add_argument("--repair", action="store_true", help="set drifted counters to the sessions found")
    parser.add_argument("--final", action="store_true", help="close a past year (its final report)")
    parser.add_argument("--run-id", default=None, help="resume this run (default: a new run)")
    parser.add_argument("--synthetic", type=int, default=0, help="first load about N synthetic sessions of the year")
    parser.add_argument("--page-size", type=int, default=None, help="index rows per page (default: 1 MB pages)")
    parser.add_argument("--checkpoint-seconds", type=float, default=None)
    parser.add_argument("--settle-seconds", type=int, default=None)
    parser.add_argument("--progress-seconds", type=float, default=None, help="seconds between progress lines")
    parser.add_argument("--connection", type=Path, default=None, help="a connection file instead of make run's")
    parser.add_argument("--no-copy", action="store_true", help="do not copy the report to .local/reports/")
    return parser.parse_args(argv)


def _environment(args: argparse.Namespace, exits: ExitStack) -> dict[str, str]:
    """Connect to the running stack, or start the storage servers on its data; the functions' environment."""
    from infra.local_stack import LocalStack, read_connection
    from infra.run import CONNECTION_FILE, LOCAL_DIR, RUN_LOCK, try_lock

    if args.connection is not None:
        return read_connection(args.connection)
    lock = try_lock(RUN_LOCK)
    if lock is None:
        if not CONNECTION_FILE.exists():
            sys.exit("make run holds .local/run.lock but wrote no .local/connection.json: wait for it to be up.")
        print(f"Connecting to the stack of make run (pid {RUN_LOCK.read_text().strip()}) ...", flush=True)
        return read_connection(CONNECTION_FILE)
    exits.callback(lock.close)
    print("make run is not running: starting DynamoDB Local and the S3 server on .local/stack ...", flush=True)
    from infra.dev_issuer import DEFAULT_KEY_DIR

    stack = LocalStack(LOCAL_DIR / "stack", port=0, issuer_dir=DEFAULT_KEY_DIR)
    stack.start()
    exits.callback(stack.stop)
    return stack.environment


def _load_synthetic(year: int, sessions: int) -> None:
    from infra.synthetic import load_year, plan_year
    from msp.clock import programme_today
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store

    plan = plan_year(year, sessions, until=programme_today())
    started = time.monotonic()

    def progress(written: int, total: int) -> None:
        if written == total or written % 5000 < 25:
            print(f"  loaded {written}/{total} items ({written / (time.monotonic() - started):.0f}/s)", flush=True)

    print(f"Loading {len(plan.sessions)} synthetic sessions of {year} ...", flush=True)
    load_year(session_year_store(), plan, patient_keyring(), progress=progress)


def _copy_report(environment: dict[str, str], prefix: str) -> Path:
    import boto3

    from infra.run import LOCAL_DIR

    s3 = boto3.client("s3", region_name=environment["AWS_REGION"])
    bucket = environment["DOCUMENTS_BUCKET"]
    target = LOCAL_DIR / prefix
    target.mkdir(parents=True, exist_ok=True)
    for entry in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        (target / entry["Key"].removeprefix(prefix)).write_bytes(body)
    return target


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    with ExitStack() as exits:
        environment = _environment(args, exits)
        os.environ.update(environment)
        from infra.lambda_runtime import LambdaRuntime
        from msp.tally.job import TallyEvent, TallyOutcome, continuation_event

        if args.synthetic:
            from msp.clock import programme_today

            _load_synthetic(args.year or programme_today().year, args.synthetic)
        runtime = LambdaRuntime(load_template())
        runtime.handler(FUNCTION)  # imported now, so its logger exists and prints readably
        for handler in logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")).handlers:
            handler.setFormatter(_readable_formatter())

        options = {
            "page_size": args.page_size,
            "checkpoint_seconds": args.checkpoint_seconds,
            "settle_seconds": args.settle_seconds,
            "progress_seconds": args.progress_seconds,
        }
        event: dict[str, Any] = {
            "year": args.year,
            "run_id": args.run_id,
            "final": args.final,
            "repair": args.repair,
        } | {key: value for key, value in options.items() if value is not None}
        event = {key: value for key, value in event.items() if value is not None}
        while True:
            answer = runtime.invoke(FUNCTION, event)
            outcome = TallyOutcome.model_validate(answer)
            follow_up = continuation_event(TallyEvent.model_validate(event), outcome)
            if outcome.status == "complete" or follow_up is None:
                break
            print(f"Stopped for time after {outcome.rows_read} rows; invoking again to resume {outcome.run_id}.")
            event = follow_up

        if outcome.status != "complete":
            print(f"The run {outcome.run_id} is not complete: make tally RUN_ID={outcome.run_id} resumes it.")
            return 1
        print(f"\nTally {outcome.run_id} of {outcome.year} complete: {outcome.totals}")
        print(f"Report: s3://{environment['DOCUMENTS_BUCKET']}/{outcome.report}")
        if not args.no_copy and outcome.report:
            print(f"Copied to {_copy_report(environment, outcome.report)}/ (CSV files open in a French spreadsheet)")
        print(f"Served by GET /v1/stats?year={outcome.year} (make run; make token ROLE=admin)")
        return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "functions"))
    sys.exit(main())
