"""`make run`: the local stack on http://127.0.0.1:3000 with demo data, until Ctrl-C."""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from infra.components import ComponentError, port_is_free
from infra.dev_issuer import DEFAULT_KEY_DIR
from infra.local_stack import BACKENDS, LocalStack, write_connection
from infra.template import FUNCTIONS_DIR, ROOT

LOCAL_DIR = ROOT / ".local"
RUN_LOCK = LOCAL_DIR / "run.lock"
# Where the running stack listens, for make tally (see infra.local_stack.write_connection).
CONNECTION_FILE = LOCAL_DIR / "connection.json"


def try_lock(path: Path):
    """The lock held by `make run` (or by a command using its data without it); None if someone holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _take_lock(path: Path):
    handle = try_lock(path)
    if handle is None:
        owner = path.read_text().strip() or "another process"
        sys.exit(f"make run (or make tally) is already running (pid {owner}) on this checkout: stop it first.")
    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=BACKENDS, default="dynamodb-local")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument(
        "--local-dir", type=Path, default=LOCAL_DIR, help="data, dev key, lock and connection file (default: .local)"
    )
    parser.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        help="run as if this day (YYYY-MM-DD) were today in Europe/Paris: declarations, windows, closing dates",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("botocore").setLevel(logging.WARNING)

    local_dir = args.local_dir
    connection_file = local_dir / CONNECTION_FILE.name
    lock = _take_lock(local_dir / RUN_LOCK.name)
    if not port_is_free(args.port):
        sys.exit(f"Port {args.port} on 127.0.0.1 is taken by another program: free it or use 'make run PORT=<other>'.")
    workdir = local_dir / ("moto" if args.backend == "moto" else "stack")
    if args.today is not None:
        # The functions run in this process: their clock moves with it (msp.clock.shift_to, local only).
        if str(FUNCTIONS_DIR) not in sys.path:
            sys.path.insert(0, str(FUNCTIONS_DIR))
        from msp.clock import shift_to

        shift_to(args.today)
    stack = LocalStack(workdir, backend=args.backend, port=args.port, issuer_dir=local_dir / DEFAULT_KEY_DIR.name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"Starting the local stack ({args.backend}) ...", flush=True)
        stack.start()
        write_connection(stack, connection_file)
        from infra.seed import DEMO_REVIEWER_DEPARTMENTS, load_demo_data

        print(load_demo_data(stack), flush=True)
        print(
            (f"\nToday:       {args.today.isoformat()} (Europe/Paris), as asked with TODAY" if args.today else "")
            + f"\nAPI:         {stack.base_url}/v1/...\n"
            f"Public page: {stack.base_url}/ (search, profiles, statistics: make tally YEAR=... for figures)\n"
            f"Admin page:  {stack.base_url}/admin/\n"
            f"Token:       make token ROLE=reviewer DEPARTMENTS={DEMO_REVIEWER_DEPARTMENTS} (admin page)\n"
            f"E-mails:     {stack.outbox} (one file per message)\n"
            f"Access log:  {stack.access_log} (one JSON line per API request; metrics and logs: this terminal)\n"
            f"Data:        {workdir} (kept across restarts; 'make reset' wipes it)\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        stop.wait()
    except ComponentError as error:
        sys.exit(f"Could not start the local stack: {error}")
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping ...", flush=True)
        connection_file.unlink(missing_ok=True)
        stack.stop()
        lock.close()


if __name__ == "__main__":
    main()
