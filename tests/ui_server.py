"""The real Dagster webserver for the UI tests: started once per pytest process on a free
localhost port with the project's workspace.yaml and a temporary DAGSTER_HOME, shared by
tests/test_webserver.py and tests/test_ui_browser.py, killed (its process group) at exit.

A plain module rather than a fixture in one test file: pytest imports test files under their
bare names, so a singleton there would exist twice."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOCATIONS_QUERY = """
query Locations {
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class UIServer:
    url: str
    proc: subprocess.Popen
    home: Path
    log_path: Path

    @classmethod
    def start(cls, timeout: float = 180.0) -> UIServer:
        home = Path(tempfile.mkdtemp(prefix="dagster-home-"))
        shutil.copy(ROOT / "pipeline" / "dagster.yaml", home / "dagster.yaml")
        port = free_port()
        env = {**os.environ, "DAGSTER_HOME": str(home),
               "SURVEY_WAREHOUSE": str(home / "survey.duckdb")}
        log_path = home / "webserver.log"
        exe = Path(sys.executable).with_name("dagster-webserver")
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(exe), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the code server dies with it
            )
        server = cls(f"http://127.0.0.1:{port}", proc, home, log_path)
        try:
            server.wait_until_loaded(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.load(response)
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def wait_until_loaded(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited:\n{self.log()}")
            try:
                entries = self.graphql(LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
            except OSError as exc:
                last = str(exc)
            else:
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [e["locationOrLoadError"] for e in entries
                              if e["locationOrLoadError"]["__typename"] == "PythonError"]
                    if errors:
                        raise RuntimeError(f"code location failed to load: {errors}")
                    return
                last = f"locations {entries}"
            time.sleep(0.5)
        raise TimeoutError(f"webserver not ready after {timeout}s ({last}):\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the group we started, by its id
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(15)
        shutil.rmtree(self.home, ignore_errors=True)


_server: UIServer | None = None


def ui_server() -> UIServer:
    """One webserver per pytest process, shared by the UI tests, stopped when pytest exits."""
    global _server
    if _server is None:
        _server = UIServer.start()
        atexit.register(_server.stop)
    return _server

