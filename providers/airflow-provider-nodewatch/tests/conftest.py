"""Fixtures of the provider's tests: real anvil nodes and a real nodewatch on 127.0.0.1.

The programs come from the environment (crates/export/tests/airflow_provider.rs sets them):
``NODEWATCH_BIN``, ``NODEWATCH_EXPORT_BIN``, ``NODEWATCH_ANVIL`` and
``NODEWATCH_ETHEREUMETL310`` (ethereum-etl 2.4.2). A missing one skips the tests that need
it, and fails them under ``CI=true``.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import pytest

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
#: How long a process may take to come up.
START_TIMEOUT = 30.0


T = TypeVar("T")


def _program(env: str) -> str:
    path = os.environ.get(env, "")
    if path and os.access(path, os.X_OK):
        return path
    if os.environ.get("CI") in ("true", "1"):
        pytest.fail(f"${env} ({path!r}) is not an executable; CI=true, so this is a failure")
    pytest.skip(f"${env} is not set to an executable")


def wait_for(
    what: str, condition: Callable[[], T], timeout: float = START_TIMEOUT, interval: float = 0.05
) -> T:
    """Polls ``condition`` until it returns something true; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rpc(url: str, method: str, params: Sequence[Any] = ()) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with _OPENER.open(request, timeout=10) as answer:
        return json.loads(answer.read())["result"]


class Anvil:
    """An anvil dev node on ``port`` (``extra``: more anvil flags)."""

    def __init__(self, program: str, port: int, *extra: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [program, "--silent", "--host", "127.0.0.1", "--port", str(port), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(f"anvil at {self.url}", self._answers)

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"anvil exited with {self.process.returncode}")
        try:
            return rpc(self.url, "eth_blockNumber") is not None
        except OSError:
            return False

    def mine(self, blocks: int) -> None:
        """``blocks`` blocks, each with one ETH transfer."""
        accounts = rpc(self.url, "eth_accounts")
        for i in range(blocks):
            tx = {"from": accounts[i % 10], "to": accounts[(i + 1) % 10], "value": hex(1000 + i)}
            rpc(self.url, "eth_sendTransaction", [tx])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Nodewatch:
    """The real nodewatch in front of ``upstreams`` (URLs in rank order), probing every 100 ms."""

    def __init__(self, program: str, upstreams: Sequence[str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="nodewatch-")
        config = os.path.join(self.dir, "nodewatch.toml")
        with open(config, "w") as f:
            f.write('[probe]\ninterval = "100ms"\ntimeout = "1s"\n')
            for i, url in enumerate(upstreams):
                f.write(f'[[upstreams]]\nname = "rank{i + 1}"\nurl = "{url}"\n')
        self.log = os.path.join(self.dir, "nodewatch.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NODEWATCH__")}
        env.update(NO_COLOR="1", RUST_LOG="info")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [program, "--config", config, "--listen", "127.0.0.1:0",
                 "--admin-listen", "127.0.0.1:0"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env,
            )
        listen, admin = wait_for("nodewatch started", self._started)
        self.url = f"http://{listen}"
        self.admin = f"http://{admin}"

    def _started(self) -> tuple[str, str] | None:
        if self.process.poll() is not None:
            pytest.fail(f"nodewatch exited with {self.process.returncode}: {self.text()}")
        for line in self.text().splitlines():
            if "nodewatch started" in line:
                fields = dict(re.findall(r'"?(listen|admin)"?[=:]"?([0-9.:]+)', line))
                return fields["listen"], fields["admin"]
        return None

    def text(self) -> str:
        with open(self.log) as f:
            return f.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def anvil_bin():
    return _program("NODEWATCH_ANVIL")


@pytest.fixture
def nodewatch_bin():
    return _program("NODEWATCH_BIN")


@pytest.fixture
def exporter_bin():
    return _program("NODEWATCH_EXPORT_BIN")


@pytest.fixture
def ethereumetl_bin():
    return _program("NODEWATCH_ETHEREUMETL310")


@pytest.fixture
def start():
    """``start(kind, *args)``: a started Anvil or Nodewatch, stopped after the test."""
    started = []

    def make(kind, *args):
        thing = kind(*args)
        started.append(thing)
        return thing

    yield make
    for thing in reversed(started):
        thing.stop()


@pytest.fixture
def node(start, anvil_bin):
    """An anvil node with 12 blocks of transfers."""
    anvil = start(Anvil, anvil_bin, free_port())
    anvil.mine(12)
    return anvil


class FakeTaskInstance:
    """What the operators touch of a task instance: XCom pushes, kept in ``xcoms``."""

    def __init__(self):
        self.xcoms = {}
        self.try_number = 1
        self.max_tries = 0

    def xcom_push(self, key, value, **_):
        self.xcoms[key] = value


@pytest.fixture
def context():
    ti = FakeTaskInstance()
    return {"ti": ti, "task_instance": ti}
