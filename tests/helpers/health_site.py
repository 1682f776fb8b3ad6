"""A small warehouse for the health and alert tests: a source table, a pipeline ``shop``
(a silver table whose check fails a quarter of the rows, a gold table) run once, a
pipeline ``broken`` whose run fails, a lakehouse.yaml with short limits and a webhook;
and a webhook receiver on loopback that takes events, or holds them without answering."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.definition import load_pipeline
from lakehouse.service.runs import start_run
from lakehouse.settings import load_settings

SHOP = {
    "pipeline.yml": "name: shop\n",
    "silver/orders.sql": "-- expectations:\n"
    '--   - {name: positive, expect: "amount > 0"}\n'
    "SELECT id, amount FROM bronze.orders",
    "gold/revenue.sql": "SELECT count(*) AS orders, sum(amount) AS revenue FROM silver.orders",
}
BROKEN = {
    "pipeline.yml": "name: broken\n",
    "silver/broken.sql": "SELECT CAST('not a number' AS INTEGER) AS n FROM bronze.orders",
}
CONFIG = """\
warehouse: {warehouse}
tables:
  silver.orders: {{sla: 60}}
pipelines:
  shop: {{path: {shop}, schedule: "*/5 * * * *"}}
  broken: {{path: {broken}}}
alerts:
  rules:
    - {{name: stale, when: stale, tables: ["silver.*"], after: 60}}
    - {{name: quality, when: quality, share: 0.1}}
    - {{name: behind, when: schedule_lag, after: 15m}}
    - {{name: growth, when: storage_growth, per_day: 1GB}}
    - {{name: failed, when: run_failed, severity: critical}}
  webhooks:
    - {{url: "{hook}", timeout: 0.5s, retries: 1, headers: {{X-Token: file:token.txt}}}}
"""


class Receiver:
    """A webhook receiver on 127.0.0.1: ``events`` it answered 200 for; while ``holding``
    it keeps each request unanswered until released (the sender times out)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.holding.is_set():
                    receiver.release.wait(30)
                    return
                with receiver.got:
                    receiver.events.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                    receiver.got.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-path"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Site:
    root: Path  # the folder of lakehouse.yaml
    warehouse: Path
    config: Path
    receiver: Receiver
    started: dict[str, Any] = field(default_factory=dict)

    def lakehouse(self) -> Lakehouse:
        return Lakehouse.from_settings(load_settings(self.config).settings)


def write_files(folder: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def build_site(root: Path) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    write_files(root / "shop", SHOP)
    write_files(root / "broken", BROKEN)
    (root / "token.txt").write_text("s3cret\n")
    receiver = Receiver()
    warehouse = root / "warehouse"
    config = root / "lakehouse.yaml"
    config.write_text(
        CONFIG.format(
            warehouse=warehouse, shop=root / "shop", broken=root / "broken", hook=receiver.url
        )
    )
    site = Site(root, warehouse, config, receiver)
    lh = site.lakehouse()
    lh.write("bronze.orders", pa.table({"id": [1, 2, 3, 4], "amount": [10.0, 20.0, -5.0, 7.5]}))
    site.started["shop"] = start_run(lh, load_pipeline(root / "shop"))
    try:
        start_run(lh, load_pipeline(root / "broken"))
    except LakehouseError:
        pass
    else:
        raise AssertionError("the broken pipeline ran")
    return site
