"""Run the ``lakehouse`` command and kill -9 itself at the n-th write, for crash tests that
must stop a process at an exact point instead of at a random moment.

    python killed_at.py N -- replay silver.events -p FOLDER

Before the N-th call of ``Lakehouse.write`` (1-based, counting every table) starts, the
process prints the table it was about to write to stderr and sends itself SIGKILL: what
the earlier writes committed stays, nothing of the N-th exists. With N = 0 nothing is
killed.
"""

from __future__ import annotations

import os
import signal
import sys

from lakehouse.cli import main
from lakehouse.warehouse import Lakehouse


def arm(n: int) -> None:
    real = Lakehouse.write
    calls = 0

    def write(self: Lakehouse, table: str, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == n:
            print(f"killed before writing {table}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, table, *args, **kwargs)

    Lakehouse.write = write  # type: ignore[method-assign]


if __name__ == "__main__":
    arm(int(sys.argv[1]))
    sys.argv = ["lakehouse", *sys.argv[3:]]
    main()
