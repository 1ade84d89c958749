"""moto's SQS, alone, as a server on loopback: the local stack's queues (the failure queues of the functions).

    python infra/sqs_server.py <port>

It serves SQS's API only (moto's SQS application, not its every-service dispatcher), on 127.0.0.1. Like DynamoDB
Local's launcher, it reads its standard input, which the launcher holds and never writes to: end of file means the
launcher ended, however it ended (SIGKILL included), and the server stops. It runs as a script, from any folder.
"""

from __future__ import annotations

import sys
import threading

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import make_server

LOOPBACK = "127.0.0.1"


def main(port: int) -> int:
    server = make_server(LOOPBACK, port, create_backend_app("sqs"), threaded=True, request_handler=MotoRequestHandler)

    def stop_when_launcher_gone() -> None:
        sys.stdin.buffer.read()  # returns at end of file only
        server.shutdown()

    threading.Thread(target=stop_when_launcher_gone, daemon=True).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
