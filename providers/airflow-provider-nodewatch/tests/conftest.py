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
from typing import Any, Protocol, TypeVar, cast

import pytest

from nodewatch_provider._compat import Context

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
    what: str,
    condition: Callable[[], T | None],
    timeout: float = START_TIMEOUT,
    interval: float = 0.05,
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
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
                [
                    program,
                    "--config",
                    config,
                    "--listen",
                    "127.0.0.1:0",
                    "--admin-listen",
                    "127.0.0.1:0",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
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


class StatusFault:
    """A front for a nodewatch admin listener on 127.0.0.1 that passes every request through,
    except that ``/status`` fails while ``failing`` names how: ``"http-500"`` (an error
    answer), ``"not-json"`` (200 with an HTML body), ``"drop"`` (the connection closed without
    an answer), ``"truncated"`` (an answer cut short of its Content-Length). ``heal()`` ends the
    fault; ``failures`` counts the ``/status`` requests it failed."""

    KINDS = ("http-500", "not-json", "drop", "truncated")

    def __init__(self, admin: str, failing: str) -> None:
        assert failing in self.KINDS, failing
        self.failing: str | None = failing
        self.failures = 0
        fault = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/status" and fault.failing is not None:
                    fault.failures += 1
                    fault.fail(self, fault.failing)
                    return
                try:
                    with _OPENER.open(admin + self.path, timeout=10) as answer:
                        code, body = answer.status, answer.read()
                except urllib.error.HTTPError as e:
                    code, body = e.code, e.read()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def fail(handler: http.server.BaseHTTPRequestHandler, kind: str) -> None:
        handler.close_connection = True
        if kind == "drop":
            return  # nothing written: the client sees the connection close
        code, body, length = {
            "http-500": (500, b"upstream proxy error", None),
            "not-json": (200, b"<html>maintenance</html>", None),
            "truncated": (200, b'{"ready": true, "upstr', 4096),
        }[kind]
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length or len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def heal(self) -> None:
        self.failing = None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


class Start(Protocol):
    """The ``start`` fixture: ``start(kind, *args)`` makes ``kind(*args)`` and stops it after
    the test."""

    def __call__(self, kind: Callable[..., S], *args: Any) -> S: ...


@pytest.fixture
def anvil_bin() -> str:
    return _program("NODEWATCH_ANVIL")


@pytest.fixture
def nodewatch_bin() -> str:
    return _program("NODEWATCH_BIN")


@pytest.fixture
def exporter_bin() -> str:
    return _program("NODEWATCH_EXPORT_BIN")


@pytest.fixture
def ethereumetl_bin() -> str:
    return _program("NODEWATCH_ETHEREUMETL310")


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(kind, *args)``: a started Anvil, Nodewatch or StatusFault, stopped after the
    test."""
    started: list[Stoppable] = []

    def make(kind: Callable[..., S], *args: Any) -> S:
        thing = kind(*args)
        started.append(thing)
        return thing

    yield make
    for thing in reversed(started):
        thing.stop()


@pytest.fixture
def node(start: Start, anvil_bin: str) -> Anvil:
    """An anvil node with 12 blocks of transfers."""
    anvil = start(Anvil, anvil_bin, free_port())
    anvil.mine(12)
    return anvil


class FakeTaskInstance:
    """What the operators touch of a task instance: XCom pushes, kept in ``xcoms``."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}
        self.try_number = 1
        self.max_tries = 0

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcoms[key] = value


@pytest.fixture
def context() -> Context:
    """A task context with a :class:`FakeTaskInstance` (see :func:`xcoms`)."""
    ti = FakeTaskInstance()
    return cast(Context, {"ti": ti, "task_instance": ti})


def xcoms(context: Context) -> dict[str, Any]:
    """What the task pushed to XCom in ``context`` (the fixture's)."""
    return cast(FakeTaskInstance, context["ti"]).xcoms
