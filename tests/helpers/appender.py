"""A writer process appending one row at a time to a table, as a job writing while
maintenance runs would: ``python appender.py WAREHOUSE TABLE START COUNT``. It prints
``{"ok": id}`` after each committed append and ``{"error": ...}`` (exit 4) on a failure."""

from __future__ import annotations

import json
import sys

from lakehouse import Lakehouse


def main() -> int:
    warehouse, table, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    lh = Lakehouse(warehouse)
    for n in range(start, start + count):
        try:
            lh.write(table, [{"id": n, "day": "2026-01-01"}])
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
            return 4
        print(json.dumps({"ok": n}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
