"""NodewatchReadySensor against a live nodewatch whose only upstream comes up mid-wait, and
whose ``/status`` fails for a while (``StatusFault``): both are "not ready", poking and
deferred."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from conftest import Anvil, Nodewatch, Start, StatusFault, free_port, rpc, wait_for, xcoms
from nodewatch_provider._compat import AirflowException, Context, TriggerEvent
from nodewatch_provider.hooks.nodewatch import NodewatchHook
from nodewatch_provider.sensors.nodewatch import NodewatchReadySensor
from nodewatch_provider.triggers.nodewatch import NodewatchReadyTrigger

T = TypeVar("T")


def sensor(nw: Nodewatch, admin_url: str | None = None, **kwargs: Any) -> NodewatchReadySensor:
    return NodewatchReadySensor(
        task_id="check_nodewatch",
        admin_url=admin_url or nw.admin,
        provider_uri=nw.url,
        poke_interval=0.1,
        timeout=60,
        **kwargs,
    )


def later(seconds: float, action: Callable[[], T]) -> tuple[threading.Thread, dict[str, T]]:
    """Runs ``action`` in a thread after ``seconds``; returns the thread and its result box."""
    box: dict[str, T] = {}

    def run() -> None:
        time.sleep(seconds)
        box["value"] = action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def assert_published(context: Context, nw: Nodewatch, anvil: Anvil, result: Any) -> None:
    pushed = xcoms(context)
    assert pushed["provider_uri"] == nw.url
    status = pushed["status"]
    assert status["ready"] is True and status["serving"] == "rank1"
    assert status["chain_id"] == int(rpc(anvil.url, "eth_chainId"), 16)
    assert status["best_head"] == int(rpc(anvil.url, "eth_blockNumber"), 16)
    [upstream] = status["upstreams"]
    assert (upstream["name"], upstream["rank"], upstream["state"]) == ("rank1", 1, "healthy")
    assert upstream["lag"] == 0
    assert status["lagging"] == [] and status["forked"] == [] and status["unhealthy"] == []
    assert result == {"provider_uri": nw.url, "status": status}
    json.dumps(result)  # XCom-serializable


def deferred_trigger(task: NodewatchReadySensor, context: Context) -> NodewatchReadyTrigger:
    """Runs the deferrable ``task`` until it defers; returns its trigger as the triggerer
    rebuilds it from ``serialize()``."""
    with pytest.raises(BaseException) as deferred:  # TaskDeferred is one
        task.execute(context)
    # Airflow 2.10 and 3 raise it from different modules: known by name here.
    deferral: Any = deferred.value
    assert type(deferral).__name__ == "TaskDeferred", deferral
    assert deferral.method_name == "execute_complete"
    path, kwargs = deferral.trigger.serialize()
    assert path == "nodewatch_provider.triggers.nodewatch.NodewatchReadyTrigger"
    return NodewatchReadyTrigger(**kwargs)


def first_event(trigger: NodewatchReadyTrigger) -> TriggerEvent:
    async def first() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), 60))


def ready_behind_a_failing_status(
    start: Start, node: Anvil, nodewatch_bin: str, fault: str
) -> tuple[Nodewatch, StatusFault]:
    """A ready nodewatch in front of ``node``, behind a :class:`StatusFault` failing ``/status``
    as ``fault`` says. The hook sees it as not ready, for the ``/status`` error."""
    nw = start(Nodewatch, nodewatch_bin, [node.url])
    front = start(StatusFault, nw.admin, fault)
    direct = NodewatchHook(admin_url=nw.admin, provider_uri=nw.url)
    wait_for("nodewatch ready", lambda: direct.readyz()[0])
    result = NodewatchHook(admin_url=front.url, provider_uri=nw.url).check()
    assert not result.ready, result
    assert result.reason.startswith(f"cannot read {front.url}/status: "), result.reason
    return nw, front


def test_poke_waits_while_nodewatch_is_not_ready_then_publishes(
    start: Start, anvil_bin: str, nodewatch_bin: str, context: Context
) -> None:
    port = free_port()
    nw = start(Nodewatch, nodewatch_bin, [f"http://127.0.0.1:{port}"])
    task = sensor(nw)
    assert task.poke(context) is False, "no upstream yet: not ready"
    assert xcoms(context) == {}
    # The node comes up while the sensor waits; execute() returns once nodewatch is ready.
    thread, box = later(0.5, lambda: start(Anvil, anvil_bin, port))
    started = time.monotonic()
    result = task.execute(context)
    thread.join()
    assert time.monotonic() - started >= 0.5, "it waited for the node"
    assert_published(context, nw, box["value"], result)


@pytest.mark.parametrize("fault", StatusFault.KINDS)
def test_poke_waits_while_status_fails_then_publishes(
    start: Start, node: Anvil, nodewatch_bin: str, context: Context, fault: str
) -> None:
    nw, front = ready_behind_a_failing_status(start, node, nodewatch_bin, fault)
    task = sensor(nw, admin_url=front.url)
    assert task.poke(context) is False, f"/status failing ({fault}): not ready, no exception"
    assert xcoms(context) == {}
    thread, _ = later(0.5, front.heal)
    result = task.execute(context)
    thread.join()
    assert front.failures >= 3, "it asked again while /status failed"
    assert_published(context, nw, node, result)


def test_deferred_sensor_fires_when_ready(
    start: Start, anvil_bin: str, nodewatch_bin: str, context: Context
) -> None:
    port = free_port()
    nw = start(Nodewatch, nodewatch_bin, [f"http://127.0.0.1:{port}"])
    task = sensor(nw, deferrable=True)
    trigger = deferred_trigger(task, context)
    thread, box = later(0.5, lambda: start(Anvil, anvil_bin, port))
    event = first_event(trigger)
    thread.join()
    assert event.payload["status"] == "ready"
    result = task.execute_complete(context, event.payload)
    assert_published(context, nw, box["value"], result)


@pytest.mark.parametrize("fault", ["http-500", "drop"])
def test_deferred_sensor_waits_while_status_fails_then_fires(
    start: Start, node: Anvil, nodewatch_bin: str, context: Context, fault: str
) -> None:
    nw, front = ready_behind_a_failing_status(start, node, nodewatch_bin, fault)
    task = sensor(nw, admin_url=front.url, deferrable=True)
    trigger = deferred_trigger(task, context)  # not ready: it defers instead of failing
    failures = front.failures
    thread, _ = later(0.5, front.heal)
    event = first_event(trigger)
    thread.join()
    assert front.failures > failures, "the trigger asked again while /status failed"
    assert event.payload["status"] == "ready", event.payload
    assert_published(context, nw, node, task.execute_complete(context, event.payload))


def test_deferrable_sensor_does_not_defer_when_already_ready(
    start: Start, node: Anvil, nodewatch_bin: str, context: Context
) -> None:
    nw = start(Nodewatch, nodewatch_bin, [node.url])
    task = sensor(nw, deferrable=True)
    result = task.execute(context)  # would raise TaskDeferred if it deferred
    assert_published(context, nw, node, result)


def test_a_provider_uri_on_another_chain_fails_the_task(
    start: Start, anvil_bin: str, node: Anvil, nodewatch_bin: str, context: Context
) -> None:
    other = start(Anvil, anvil_bin, free_port(), "--chain-id", "7")
    nw = start(Nodewatch, nodewatch_bin, [node.url])
    task = NodewatchReadySensor(
        task_id="check",
        admin_url=nw.admin,
        provider_uri=other.url,
        poke_interval=0.1,
        timeout=30,
    )
    with pytest.raises(AirflowException, match=r"serves chain 7, but nodewatch .* serves chain"):
        task.execute(context)


def test_execute_complete_fails_with_the_triggers_error(context: Context) -> None:
    task = NodewatchReadySensor(
        task_id="check", admin_url="http://127.0.0.1:1", provider_uri="http://127.0.0.1:1"
    )
    with pytest.raises(AirflowException, match="nodewatch readiness: boom"):
        task.execute_complete(context, {"status": "error", "message": "boom"})
