"""One client instance per process, rebuilt after ``fork()`` and closed on reset.

A forked child must not use its parent's HTTP session (the two would share one
socket), so an instance built in another process counts as absent; on reset it
is forgotten but not closed, since closing would close the parent's connections.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=Closable)


class ProcessLocalSingleton(Generic[ClientT]):
    """Builds the instance with ``build`` on first use in each process."""

    def __init__(self, build: Callable[[], ClientT]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._owner_pid = 0
        self._instance: ClientT | None = None

    def get(self) -> ClientT:
        instance = self._instance
        if instance is None or self._owner_pid != os.getpid():
            with self._lock:
                if self._instance is None or self._owner_pid != os.getpid():
                    self._instance, self._owner_pid = self._build(), os.getpid()
                instance = self._instance
        return instance

    def reset(self) -> None:
        """Close and forget the instance (tests after changing settings; process shutdown)."""
        with self._lock:
            instance, self._instance = self._instance, None
            inherited = self._owner_pid != os.getpid()
        if instance is not None and not inherited:
            instance.close()
