"""`sigwarden serve` as a subprocess on loopback ports, for the demo and the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


class ProviderProcess:
    """`sigwarden serve` as a subprocess on loopback ports; stopped by `stop()`."""

    def __init__(self, config_path: Path, port: int, metrics_port: int, workers: int | None = 1,
                 options: tuple[str, ...] = ()) -> None:
        """`workers`: passed as --workers (one by default, so counts are the same on every machine);
        None leaves it to the config and the CPU quota. `options`: more `serve` options (--log-format…)."""
        self.config_path = config_path
        self.port = port
        self.metrics_port = metrics_port
        self.log_path = config_path.with_suffix(".log")
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "provider", "serve", "--config", str(config_path)]
        if workers is not None:
            command += ["--workers", str(workers)]
        command += options
        self.process = subprocess.Popen(command,
                                        stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"provider exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.metrics_url}/readyz", timeout=1).status_code == 200:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"provider not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
