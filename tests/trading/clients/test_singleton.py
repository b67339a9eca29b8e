"""ProcessLocalSingleton: one instance per process, rebuilt after fork, closed only by its own process."""

from __future__ import annotations

import os

from trading.clients.singleton import ProcessLocalSingleton


class Client:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_builds_once_and_reset_closes_and_rebuilds():
    built: list[Client] = []
    singleton = ProcessLocalSingleton(lambda: built.append(Client()) or built[-1])
    first = singleton.get()
    assert singleton.get() is first and len(built) == 1
    singleton.reset()
    assert first.closed
    second = singleton.get()
    assert second is not first and not second.closed
    singleton.reset()
    singleton.reset()  # nothing to close: no error


def test_a_forked_child_leaves_the_parents_instance_open_and_builds_its_own():
    singleton = ProcessLocalSingleton(Client)
    parent = singleton.get()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            singleton.reset()  # the inherited instance: forgotten, not closed (it is the parent's)
            parent_left_open = not parent.closed
            rebuilt = singleton.get()
            singleton.reset()  # the child's own instance: closed
            good = parent_left_open and rebuilt is not parent and rebuilt.closed
            answer = b"ok" if good else b"bad"
        except BaseException:
            answer = b"error"
        os.write(write_end, answer)
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert singleton.get() is parent and not parent.closed
