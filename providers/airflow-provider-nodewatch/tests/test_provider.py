"""The provider as Airflow sees it: its entry point and provider info, its connection type and
the connection test behind the UI's "Test" button, its imports."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import urllib.parse
from typing import Any

import pytest

from conftest import Anvil, Nodewatch, Start, free_port, rpc, wait_for
from nodewatch_provider import __version__, get_provider_info
from nodewatch_provider.hooks.nodewatch import NodewatchHook, summarize


def test_entry_point_registers_the_provider_and_its_connection_type() -> None:
    points = [
        p
        for p in importlib.metadata.entry_points(group="apache_airflow_provider")
        if p.value == "nodewatch_provider:get_provider_info"
    ]
    assert len(points) == 1, "the wheel's apache_airflow_provider entry point is installed"
    assert points[0].load()() == get_provider_info()
    dist = importlib.metadata.distribution("airflow-provider-nodewatch")
    assert dist.version == __version__

    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-nodewatch" in manager.providers
    hook = manager.hooks.get("nodewatch")
    assert hook is not None, "the nodewatch connection type is known"
    assert hook.hook_class_name == "nodewatch_provider.hooks.nodewatch.NodewatchHook"
    assert hook.connection_testable, "the UI offers its Test button"


def test_provider_info_is_valid_and_names_every_module() -> None:
    import jsonschema

    info = get_provider_info()
    # Airflow validates provider info against this schema when it discovers providers.
    schema = importlib.resources.files("airflow").joinpath("provider_info.schema.json")
    jsonschema.validate(info, json.loads(schema.read_text()))
    integrations = {i["integration-name"] for i in info["integrations"]}
    listed = {}
    for kind in ("hooks", "operators", "sensors", "triggers"):
        [entry] = info[kind]
        assert entry["integration-name"] in integrations
        for module in entry["python-modules"]:
            listed[module] = importlib.import_module(module)
    assert set(listed) == {
        "nodewatch_provider.hooks.nodewatch",
        "nodewatch_provider.operators.export",
        "nodewatch_provider.sensors.nodewatch",
        "nodewatch_provider.triggers.nodewatch",
    }
    assert hasattr(listed["nodewatch_provider.triggers.nodewatch"], "NodewatchReadyTrigger")
    assert info["versions"] == [__version__]


def test_the_package_is_typed() -> None:
    dist = importlib.metadata.distribution("airflow-provider-nodewatch")
    assert "nodewatch_provider/py.typed" in {str(f) for f in dist.files or []}


def test_connection_from_a_uri_gives_admin_url_and_provider_uri(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_NODEWATCH_SIDE",
        "nodewatch://10.0.0.7:9600?provider_uri=http%3A%2F%2F10.0.0.7%3A8600",
    )
    hook = NodewatchHook(nodewatch_conn_id="nodewatch_side")
    assert hook.admin_url == "http://10.0.0.7:9600"
    assert hook.provider_uri == "http://10.0.0.7:8600"
    # Explicit URLs win over the connection.
    hook = NodewatchHook(nodewatch_conn_id="nodewatch_side", admin_url="http://127.0.0.1:1/")
    assert hook.admin_url == "http://127.0.0.1:1"
    assert hook.provider_uri == "http://10.0.0.7:8600"


def test_without_a_default_connection_the_hook_uses_nodewatchs_defaults() -> None:
    hook = NodewatchHook()
    assert (hook.admin_url, hook.provider_uri) == ("http://127.0.0.1:9545", "http://127.0.0.1:8545")


def connection_uri(admin: str, provider_uri: str) -> str:
    host_port = urllib.parse.urlsplit(admin).netloc
    return f"nodewatch://{host_port}?provider_uri={urllib.parse.quote(provider_uri, safe='')}"


def test_test_connection_says_what_answered_and_what_did_not(
    start: Start, anvil_bin: str, node: Anvil, nodewatch_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    nw = start(Nodewatch, nodewatch_bin, [node.url])
    chain = int(rpc(node.url, "eth_chainId"), 16)
    hook = NodewatchHook(admin_url=nw.admin, provider_uri=nw.url)
    wait_for("nodewatch ready", lambda: hook.readyz()[0])

    # As Airflow's "Test" button runs it: the form's connection, the hook by connection type.
    from airflow.models.connection import Connection

    monkeypatch.setenv("AIRFLOW_CONN_NODEWATCH_FORM", connection_uri(nw.admin, nw.url))
    conn = Connection(conn_id="nodewatch_form", uri=connection_uri(nw.admin, nw.url))
    ok, message = conn.test_connection()
    assert ok, message
    assert message.startswith(f"nodewatch at {nw.admin} answers: ready, serving rank1"), message
    assert f"{nw.url} serves its chain {chain}" in message

    # Nothing at the admin URL.
    nowhere = f"http://127.0.0.1:{free_port()}"
    ok, message = NodewatchHook(admin_url=nowhere, provider_uri=nw.url).test_connection()
    assert not ok and message.startswith(f"cannot read {nowhere}/status: "), message

    # A provider URI that is not this nodewatch's.
    other = start(Anvil, anvil_bin, free_port(), "--chain-id", "7")
    ok, message = NodewatchHook(admin_url=nw.admin, provider_uri=other.url).test_connection()
    assert not ok and f"{other.url} serves chain 7, but nodewatch" in message, message

    # A provider URI that answers no JSON-RPC (the admin listener).
    ok, message = NodewatchHook(admin_url=nw.admin, provider_uri=nw.admin).test_connection()
    assert not ok and message.startswith(f"eth_chainId through {nw.admin} failed"), message

    # A connection id that does not exist.
    ok, message = NodewatchHook(nodewatch_conn_id="nodewatch_missing").test_connection()
    assert not ok and "nodewatch_missing" in message, message


def test_test_connection_passes_for_a_nodewatch_that_is_not_ready_yet(
    start: Start, nodewatch_bin: str
) -> None:
    # No upstream answers: eth_chainId through nodewatch cannot work yet, the connection is
    # right all the same.
    nw = start(Nodewatch, nodewatch_bin, [f"http://127.0.0.1:{free_port()}"])
    ok, message = NodewatchHook(admin_url=nw.admin, provider_uri=nw.url).test_connection()
    assert ok, message
    assert message.startswith(
        f"nodewatch at {nw.admin} answers: not ready yet (0 of 1 upstreams healthy), so the "
        "provider URI could not be checked: eth_chainId through "
    ), message


def test_summary_names_lagging_forked_and_unhealthy_upstreams() -> None:
    status: dict[str, Any] = {
        "ready": True,
        "best_head": 100,
        "chain_id": 1,
        "serving": "a",
        "upstreams": [
            {"name": "a", "rank": 1, "status": "healthy", "head": 100, "lag": 0},
            {"name": "b", "rank": 2, "status": "healthy", "head": 80, "lag": 20, "lagging": True},
            {"name": "c", "rank": 3, "status": "healthy", "head": 100, "lag": 0, "forked": True},
            {
                "name": "d",
                "rank": 4,
                "status": "unhealthy",
                "head": None,
                "lag": None,
                "last_error": "connect refused",
            },
            {"name": "e", "rank": 5, "status": "healthy", "head": 90, "syncing": True},
        ],
    }
    summary = summarize(status)
    assert [u["state"] for u in summary["upstreams"]] == [
        "healthy",
        "lagging",
        "forked",
        "unhealthy",
        "syncing",
    ]
    assert summary["healthy"] == ["a"]
    assert summary["lagging"] == ["b", "e"]
    assert summary["forked"] == ["c"]
    assert summary["unhealthy"] == ["d"]
    assert (summary["serving"], summary["best_head"], summary["chain_id"]) == ("a", 100, 1)
    assert summary["upstreams"][3]["last_error"] == "connect refused"
    json.dumps(summary)
