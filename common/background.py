"""A daemon thread that a service starts with its app and stops on shutdown."""

from __future__ import annotations

import threading
from typing import Self


class BackgroundLoop:
    """Subclasses set `thread_name` and implement `_run`, returning once `_stop` is set."""

    thread_name = "background"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def start(self) -> Self:
        threading.Thread(target=self._run, name=self.thread_name, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        raise NotImplementedError
