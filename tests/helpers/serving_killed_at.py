"""Run ``lakehouse serving refresh`` and kill -9 itself before the n-th statement it
sends to the serving store, for crash tests that must stop a refresh at every point.

    python serving_killed_at.py N WAREHOUSE

With N = 0 nothing is killed and the number of statements is printed last."""

from __future__ import annotations

import os
import signal
import sys

from lakehouse.serving.store import Store
from lakehouse.warehouse import Lakehouse


def main() -> None:
    n, warehouse = int(sys.argv[1]), sys.argv[2]
    real = Store.command
    calls = 0

    def command(self: Store, sql: str) -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            print(f"killed before: {sql[:80]}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, sql)

    Store.command = command  # type: ignore[method-assign]
    Lakehouse(warehouse).serving.refresh()
    print(calls, flush=True)


if __name__ == "__main__":
    main()
