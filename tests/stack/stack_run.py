"""One `python -m stack <command>` in the foreground, in its own session, as a user runs
`make up` or `make up-hosts`: its output collected line by line, driven with the same CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from common.procs import wait_until
from common.settings import REPO_ROOT


class StackRun:
    def __init__(self, env: dict[str, str], args: list[str], banner: str):
        self.env, self.banner, self.name = env, banner, " ".join(args)
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "stack", *args], cwd=REPO_ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_up(self, timeout: float = 150) -> None:
        def banner() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n"
                                     f"{self.output}")
            return self.banner in self.output

        wait_until(banner, timeout=timeout, interval=0.25, message=f"the {self.name} banner")

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "stack", *args], cwd=REPO_ROOT,
                              env=self.env, capture_output=True, text=True, timeout=60)

    def ps(self) -> dict[str, dict]:
        result = self.ctl("ps", "--json")
        assert result.returncode == 0, result.stderr
        return {row["name"]: row for row in json.loads(result.stdout)}
