"""The child process of a launched run: ``python -m lakehouse.service.child FOLDER RUN_ID
[--full-refresh] [--select NAME]... [--trigger T]``. It opens the warehouse named by
``LAKEHOUSE_WAREHOUSE``, runs the pipeline through ``runs.start_run`` and exits 0, or
writes ``error: ...`` (and ``hint: ...``) to its error output and exits 1; the launcher
reads both."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lakehouse.errors import LakehouseError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse.service.child")
    parser.add_argument("folder")
    parser.add_argument("run_id")
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--select", action="append", default=[])
    parser.add_argument("--trigger", default="api")
    args = parser.parse_args(argv)
    try:
        from lakehouse.ops.logs import configure_from
        from lakehouse.pipeline.definition import load_pipeline
        from lakehouse.service.runs import start_run
        from lakehouse.warehouse import Lakehouse

        lh = Lakehouse.from_settings()
        configure_from(lh.settings)
        start_run(
            lh,
            load_pipeline(args.folder),
            full_refresh=args.full_refresh,
            select=args.select or None,
            run_id=args.run_id,
            trigger=args.trigger,
        )
    except LakehouseError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last word for anything unexpected
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
