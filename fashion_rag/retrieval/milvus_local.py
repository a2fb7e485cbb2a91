"""A local Milvus standalone for tests, benchmarks and trying the Milvus store on one machine.

The PyPI package `milvus` ships the server binary; `milvus-server --data DIR` runs it with an
embedded etcd and local storage. The wrapper starts the binary as a child, so the whole process
group is stopped: stopping only the wrapper would leave the server running.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fashion_rag.errors import StoreUnavailableError
from fashion_rag.retrieval.milvus_store import connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def milvus_server(data: str | Path | None = None, port: int | None = None, timeout: float = 180.0) -> Iterator[str]:
    """Run a Milvus standalone on 127.0.0.1 and yield its store address (milvus://127.0.0.1:PORT).
    `data`: its folder (a temporary one, removed afterwards, by default). StoreUnavailableError if
    it cannot start: the package is missing, or it did not answer within `timeout` seconds."""
    executable = server_executable()
    if executable is None:
        raise StoreUnavailableError("No milvus-server here: `pip install milvus` (see requirements.txt).")
    port = port or free_port()
    folder = Path(data) if data else Path(tempfile.mkdtemp(prefix="milvus-"))
    log = open(folder.parent / f"{folder.name}.log", "w")  # beside the data: kept for a post-mortem
    process = subprocess.Popen([executable, "--data", str(folder), "--proxy-port", str(port)], stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    started = False
    try:
        _wait_until_ready(process, port, timeout, log.name)
        started = True
        yield f"milvus://127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()
        if not data:
            shutil.rmtree(folder, ignore_errors=True)
        if started and not data:  # a failed start keeps its log
            Path(log.name).unlink(missing_ok=True)


def server_executable() -> str | None:
    """The `milvus-server` of this Python's environment (beside its interpreter, found even when
    the virtualenv is not activated), else the first on PATH."""
    return shutil.which("milvus-server", path=str(Path(sys.executable).parent)) or shutil.which("milvus-server")


def _wait_until_ready(process: subprocess.Popen, port: int, timeout: float, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StoreUnavailableError(f"milvus-server exited with code {process.returncode}; see {log}.")
        try:
            connect(f"http://127.0.0.1:{port}", timeout=5).list_collections()
            return
        except Exception:  # not listening yet, or still starting its components
            time.sleep(1)
    _stop(process)
    raise StoreUnavailableError(f"milvus-server did not answer on port {port} within {timeout:.0f} s; see {log}.")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the wrapper and the server it started, SIGKILL after 20 s."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)  # anyone of the group left?
            except ProcessLookupError:
                process.poll()
                return
            process.poll()  # reap the wrapper
            time.sleep(0.2)
