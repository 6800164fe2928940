"""NodewatchReadySensor against a live nodewatch whose only upstream comes up mid-wait."""

import asyncio
import json
import threading
import time

import pytest

from conftest import Anvil, Nodewatch, free_port, rpc
from nodewatch_provider._compat import AirflowException
from nodewatch_provider.sensors.nodewatch import NodewatchReadySensor
from nodewatch_provider.triggers.nodewatch import NodewatchReadyTrigger


def sensor(nw, **kwargs):
    return NodewatchReadySensor(
        task_id="check_nodewatch", admin_url=nw.admin, provider_uri=nw.url,
        poke_interval=0.1, timeout=60, **kwargs,
    )


def later(seconds, action):
    """Runs ``action`` in a thread after ``seconds``; returns the thread and its result box."""
    box = {}

    def run():
        time.sleep(seconds)
        box["value"] = action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def assert_published(context, nw, anvil, result):
    xcoms = context["ti"].xcoms
    assert xcoms["provider_uri"] == nw.url
    status = xcoms["status"]
    assert status["ready"] is True and status["serving"] == "rank1"
    assert status["chain_id"] == int(rpc(anvil.url, "eth_chainId"), 16)
    assert status["best_head"] == int(rpc(anvil.url, "eth_blockNumber"), 16)
    [upstream] = status["upstreams"]
    assert (upstream["name"], upstream["rank"], upstream["state"]) == ("rank1", 1, "healthy")
    assert upstream["lag"] == 0
    assert status["lagging"] == [] and status["forked"] == [] and status["unhealthy"] == []
    assert result == {"provider_uri": nw.url, "status": status}
    json.dumps(result)  # XCom-serializable


def test_poke_waits_while_nodewatch_is_not_ready_then_publishes(start, anvil_bin, nodewatch_bin,
                                                               context):
    port = free_port()
    nw = start(Nodewatch, nodewatch_bin, [f"http://127.0.0.1:{port}"])
    task = sensor(nw)
    assert task.poke(context) is False, "no upstream yet: not ready"
    assert context["ti"].xcoms == {}
    # The node comes up while the sensor waits; execute() returns once nodewatch is ready.
    thread, box = later(0.5, lambda: start(Anvil, anvil_bin, port))
    started = time.monotonic()
    result = task.execute(context)
    thread.join()
    assert time.monotonic() - started >= 0.5, "it waited for the node"
    assert_published(context, nw, box["value"], result)


def test_deferred_sensor_fires_when_ready(start, anvil_bin, nodewatch_bin, context):
    port = free_port()
    nw = start(Nodewatch, nodewatch_bin, [f"http://127.0.0.1:{port}"])
    task = sensor(nw, deferrable=True)
    with pytest.raises(BaseException) as deferred:  # TaskDeferred is one
        task.execute(context)
    assert type(deferred.value).__name__ == "TaskDeferred", deferred.value
    trigger = deferred.value.trigger
    assert deferred.value.method_name == "execute_complete"
    # What the triggerer stores and rebuilds.
    path, kwargs = trigger.serialize()
    assert path == "nodewatch_provider.triggers.nodewatch.NodewatchReadyTrigger"
    trigger = NodewatchReadyTrigger(**kwargs)

    async def first_event():
        async for event in trigger.run():
            return event

    thread, box = later(0.5, lambda: start(Anvil, anvil_bin, port))
    event = asyncio.run(asyncio.wait_for(first_event(), 60))
    thread.join()
    assert event.payload["status"] == "ready"
    result = task.execute_complete(context, event.payload)
    assert_published(context, nw, box["value"], result)


def test_deferrable_sensor_does_not_defer_when_already_ready(start, node, nodewatch_bin, context):
    nw = start(Nodewatch, nodewatch_bin, [node.url])
    task = sensor(nw, deferrable=True)
    result = task.execute(context)  # would raise TaskDeferred if it deferred
    assert_published(context, nw, node, result)


def test_a_provider_uri_on_another_chain_fails_the_task(start, anvil_bin, node, nodewatch_bin,
                                                        context):
    other = start(Anvil, anvil_bin, free_port(), "--chain-id", "7")
    nw = start(Nodewatch, nodewatch_bin, [node.url])
    task = NodewatchReadySensor(task_id="check", admin_url=nw.admin, provider_uri=other.url,
                                poke_interval=0.1, timeout=30)
    with pytest.raises(AirflowException, match="serves chain 7, but nodewatch .* serves chain"):
        task.execute(context)


def test_execute_complete_fails_with_the_triggers_error(context):
    task = NodewatchReadySensor(task_id="check", admin_url="http://127.0.0.1:1",
                                provider_uri="http://127.0.0.1:1")
    with pytest.raises(AirflowException, match="nodewatch readiness: boom"):
        task.execute_complete(context, {"status": "error", "message": "boom"})
