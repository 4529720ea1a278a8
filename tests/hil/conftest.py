"""HIL test fixtures: fail any test that leaks a socket, pty, pipe or child process.

The root conftest already fails leaked threads. Here every test's open file descriptors (by
what they point at) and live child processes are compared before and after; module-scoped
fixtures are set up before the snapshot and torn down after it, so they are not counted.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_WATCHED = ("socket:", "pipe:", "/dev/pts/", "/dev/ptmx", "anon_inode:")


def _open_fds() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith(_WATCHED):
                out[int(name)] = target
    return out


def _children() -> set[int]:
    me = os.getpid()
    kids = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == me and fields[0] != "Z":
                kids.add(int(name))
    return kids


@pytest.fixture(autouse=True)
def _no_leaked_fds_or_processes() -> Iterator[None]:
    fds = _open_fds()
    kids = _children()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        leaked_fds = {fd: t for fd, t in _open_fds().items() if fds.get(fd) != t}
        leaked_kids = _children() - kids
        if not (leaked_fds or leaked_kids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked_fds, f"test leaked file descriptors: {leaked_fds}"
    assert not leaked_kids, f"test leaked child processes: {sorted(leaked_kids)}"


class ServeProcess:
    """``bms-emu serve`` as a real subprocess; ``port`` is the one it printed."""

    def __init__(self, args: list[str], timeout_s: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bms_emu.cli.main", "serve", "--spi", "tcp://127.0.0.1:0",
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            self.line = self._first_line(timeout_s)
        except BaseException:
            self.stop()
            raise
        self.port = int(self.line.split()[2].rsplit(":", 1)[1])

    def _first_line(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                raise TimeoutError(f"bms-emu serve printed nothing within {timeout_s} s")
        line = self.proc.stdout.readline()
        if not line.startswith("listening spi"):
            raise RuntimeError(f"bms-emu serve: {line!r} {self.proc.stderr.read()!r}")
        return line

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        """Signal, wait (bounded), close the pipes; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)
            raise
        finally:
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        return rc


@pytest.fixture()
def serve_process() -> Iterator[type[ServeProcess]]:
    """Factory of :class:`ServeProcess`; anything still running is stopped at teardown."""
    started: list[ServeProcess] = []

    class _Tracked(ServeProcess):
        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            super().__init__(*a, **k)
            started.append(self)

    yield _Tracked
    for p in started:
        if p.proc.returncode is None:
            p.stop()


REPO = Path(__file__).resolve().parents[2]
C_DIR = REPO / "hil" / "clients" / "c"
