"""Run one callable in several threads at once: the shared harness of the race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

ResultT = TypeVar("ResultT")


def run_in_threads(
    target: Callable[[], ResultT], count: int, *, timeout: float = 30.0
) -> tuple[list[ResultT], list[BaseException]]:
    """Start ``count`` threads on ``target``, wait for them (``timeout`` each), return (results, errors).

    Results are in completion order; a thread that raised adds its error instead. Every
    thread closes its database connections, so none leaks out of the pool.
    """
    results: list[ResultT] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(target())
        except BaseException as error:  # reported to the caller, which asserts on it
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results, errors
