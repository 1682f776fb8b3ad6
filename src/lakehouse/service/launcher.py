"""Starting pipeline runs in child processes, so the caller (a server, a scheduler)
keeps working while a run does, and following each run until it has records of its own.

This is the one place that builds a child run's command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.run import new_run_id

if TYPE_CHECKING:
    from lakehouse.pipeline.definition import Pipeline


def run_command(
    folder: str | Path,
    run_id: str,
    *,
    full_refresh: bool = False,
    select: Sequence[str] = (),
    trigger: str = "api",
) -> list[str]:
    """The command line of a child process that runs the pipeline in ``folder`` as
    ``run_id``."""
    args = [sys.executable, "-m", "lakehouse.service.child", str(folder), run_id]
    if full_refresh:
        args.append("--full-refresh")
    for item in select:
        args += ["--select", item]
    return [*args, "--trigger", trigger]


class Launches:
    """Runs started here, until the run has records of its own: a small file per launch
    in ``<warehouse>/_pipelines/launches`` (any process of the warehouse can answer for
    it), the run's error output next to it, and its exit code once it ends. ``root`` is
    the folder of a local warehouse; without one, runs cannot be launched."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = str(root) if root else None
        self.folder = Path(root) / "_pipelines" / "launches" if root else None
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[bytes]] = []

    def start_run(
        self,
        pipeline: Pipeline,
        *,
        full_refresh: bool = False,
        select: Sequence[str] = (),
        trigger: str = "api",
    ) -> str:
        """Start a run of ``pipeline`` in a child process; returns its run id at once."""
        run_id = new_run_id()
        args = run_command(
            pipeline.folder, run_id, full_refresh=full_refresh, select=select, trigger=trigger
        )
        env = {**os.environ, "LAKEHOUSE_WAREHOUSE": str(self.root), "NO_COLOR": "1"}
        self.start(run_id, pipeline.name, args, env)
        return run_id

    def start(self, run_id: str, pipeline: str, args: list[str], env: dict[str, str]) -> None:
        """Start the child process ``args`` as the launch of ``run_id``."""
        if self.folder is None:
            raise LakehouseError(
                "runs can be started from the API only for a local warehouse",
                "run it with `lakehouse run` where the pipeline is",
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{run_id}.json").write_text(json.dumps({"pipeline": pipeline}))
        with open(self.folder / f"{run_id}.err", "wb") as errors:
            proc = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        with self._lock:
            self._procs.append(proc)
        threading.Thread(target=self._wait, args=(run_id, proc), daemon=True).start()

    def _wait(self, run_id: str, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        assert self.folder is not None
        (self.folder / f"{run_id}.exit").write_text(str(code))
        with self._lock:
            self._procs.remove(proc)

    def state(self, run_id: str) -> dict[str, Any] | None:
        """What is known of a launch: ``starting`` until its process ends, then
        ``succeeded`` or ``failed`` (with the last error line); None if none was made."""
        if self.folder is None or not (self.folder / f"{run_id}.json").exists():
            return None
        pipeline = json.loads((self.folder / f"{run_id}.json").read_text())["pipeline"]
        exit_file = self.folder / f"{run_id}.exit"
        if not exit_file.exists():
            return {"run_id": run_id, "pipeline": pipeline, "status": "starting"}
        code = int(exit_file.read_text() or 1)
        lines = (self.folder / f"{run_id}.err").read_text(errors="replace").strip().splitlines()
        error = next((x for x in reversed(lines) if x.startswith("error:")), None)
        if error is None and lines:
            error = lines[-1]
        return {
            "run_id": run_id,
            "pipeline": pipeline,
            "status": "succeeded" if code == 0 else "failed",
            "error": error if code else None,
        }

    def stop(self) -> None:
        """Terminate the runs still going (killed if they do not end within 10 s)."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
