"""`make load`: a bounded load test of the local stack on 127.0.0.1, then invariants checked in its tables.

Not part of `make test`. Entry point: `python -m tests.load.run --help`.
"""
