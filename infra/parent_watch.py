"""Runs a server that cannot watch its launcher itself (SeaweedFS's `weed`), and stops it when the launcher is gone.

    python infra/parent_watch.py <server command ...>

The launcher holds the write end of this process's standard input and never writes to it: end of file means
the launcher ended, however it ended (SIGKILL included), and the server gets SIGTERM, then SIGKILL if it has
not stopped within the grace period. A SIGTERM to this process is passed on the same way, so the launcher
stops the server as it would stop it directly. Standard library only: it runs as a script, from any folder.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

GRACE_SECONDS = 10


def stop_when_launcher_gone(server: subprocess.Popen) -> None:
    sys.stdin.buffer.read()  # returns at end of file only: the launcher is gone
    server.terminate()
    try:
        server.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()


def main(command: list[str]) -> int:
    server = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    threading.Thread(target=stop_when_launcher_gone, args=(server,), daemon=True).start()
    status = server.wait()
    return status if status >= 0 else 128 - status  # killed by a signal: the shell's convention


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
