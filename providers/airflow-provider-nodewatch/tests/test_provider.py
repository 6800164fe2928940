"""The provider as Airflow sees it: its entry point, its connection type, its imports."""

import importlib.metadata

from nodewatch_provider import __version__, get_provider_info
from nodewatch_provider.hooks.nodewatch import NodewatchHook, summarize


def test_entry_point_registers_the_provider_and_its_connection_type():
    points = [
        p for p in importlib.metadata.entry_points(group="apache_airflow_provider")
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


def test_connection_from_a_uri_gives_admin_url_and_provider_uri(monkeypatch):
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


def test_without_a_default_connection_the_hook_uses_nodewatchs_defaults():
    hook = NodewatchHook()
    assert (hook.admin_url, hook.provider_uri) == ("http://127.0.0.1:9545", "http://127.0.0.1:8545")


def test_summary_names_lagging_forked_and_unhealthy_upstreams():
    status = {
        "ready": True, "best_head": 100, "chain_id": 1, "serving": "a",
        "upstreams": [
            {"name": "a", "rank": 1, "status": "healthy", "head": 100, "lag": 0},
            {"name": "b", "rank": 2, "status": "healthy", "head": 80, "lag": 20, "lagging": True},
            {"name": "c", "rank": 3, "status": "healthy", "head": 100, "lag": 0, "forked": True},
            {"name": "d", "rank": 4, "status": "unhealthy", "head": None, "lag": None,
             "last_error": "connect refused"},
            {"name": "e", "rank": 5, "status": "healthy", "head": 90, "syncing": True},
        ],
    }
    summary = summarize(status)
    assert [u["state"] for u in summary["upstreams"]] == [
        "healthy", "lagging", "forked", "unhealthy", "syncing"]
    assert summary["healthy"] == ["a"]
    assert summary["lagging"] == ["b", "e"]
    assert summary["forked"] == ["c"]
    assert summary["unhealthy"] == ["d"]
    assert (summary["serving"], summary["best_head"], summary["chain_id"]) == ("a", 100, 1)
    assert summary["upstreams"][3]["last_error"] == "connect refused"
