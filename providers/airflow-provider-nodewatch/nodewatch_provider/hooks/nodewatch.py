"""The ``nodewatch`` connection type and the calls to a nodewatch admin listener.

A connection holds the admin URL (``host``/``port``, scheme ``http`` unless the host says
``https://``) and, as the extra ``provider_uri``, the JSON-RPC URL the export tasks should use
(nodewatch's listen address). As an environment variable::

    AIRFLOW_CONN_NODEWATCH_DEFAULT='nodewatch://127.0.0.1:9545?provider_uri=http%3A%2F%2F127.0.0.1%3A8545'

Without a ``nodewatch_default`` connection the hook uses nodewatch's own defaults,
``http://127.0.0.1:9545`` and ``http://127.0.0.1:8545`` (a sidecar or a local service).

Only the standard library is used, and never an HTTP proxy from the environment: nodewatch
runs beside the worker.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional

from nodewatch_provider._compat import AirflowException, BaseHook

DEFAULT_ADMIN_URL = "http://127.0.0.1:9545"
DEFAULT_PROVIDER_URI = "http://127.0.0.1:8545"
DEFAULT_CONN_ID = "nodewatch_default"
#: Seconds one HTTP call to nodewatch may take.
DEFAULT_HTTP_TIMEOUT = 10.0

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Readiness:
    """One readiness check: whether the export may start, and why not if it may not."""

    ready: bool
    #: The ``/readyz`` answer, or why nodewatch could not be asked.
    reason: str
    #: The ``/status`` summary (:func:`summarize`), when nodewatch answered.
    summary: Optional[dict] = field(default=None)


def state(upstream: dict) -> str:
    """The one word for an upstream of ``/status``, as ``nodewatch status`` prints it."""
    if upstream.get("wrong_chain"):
        return "wrong-chain"
    if upstream.get("forked"):
        return "forked"
    status = upstream.get("status") or "unknown"
    if status == "healthy" and upstream.get("syncing"):
        return "syncing"
    if status == "healthy" and upstream.get("lagging"):
        return "lagging"
    return status


def summarize(status: dict) -> dict:
    """The part of a ``/status`` document a DAG needs: who serves, every upstream's rank,
    state, head and lag, and the names of the upstreams that are not usable as they are."""
    upstreams = [
        {
            "name": u.get("name"),
            "rank": u.get("rank"),
            "state": state(u),
            "head": u.get("head"),
            "lag": u.get("lag"),
            "last_error": u.get("last_error"),
        }
        for u in status.get("upstreams", [])
    ]

    def named(*states):
        return [u["name"] for u in upstreams if u["state"] in states]

    return {
        "ready": bool(status.get("ready")),
        "serving": status.get("serving"),
        "best_head": status.get("best_head"),
        "chain_id": status.get("chain_id"),
        "upstreams": upstreams,
        "healthy": named("healthy"),
        "lagging": named("lagging", "syncing"),
        "forked": named("forked", "wrong-chain"),
        "unhealthy": named("unhealthy", "unknown"),
    }


def _body(answer) -> str:
    return answer.read().decode("utf-8", "replace").strip()


class NodewatchHook(BaseHook):
    """A nodewatch admin listener and the provider URI behind it.

    ``admin_url``/``provider_uri`` given here win over the connection's.
    """

    conn_name_attr = "nodewatch_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "nodewatch"
    hook_name = "nodewatch"

    def __init__(
        self,
        nodewatch_conn_id: str = DEFAULT_CONN_ID,
        admin_url: Optional[str] = None,
        provider_uri: Optional[str] = None,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.nodewatch_conn_id = nodewatch_conn_id
        self._admin_url = admin_url
        self._provider_uri = provider_uri
        self.http_timeout = http_timeout
        self._resolved = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict:
        return {
            "hidden_fields": ["schema", "login", "password"],
            "relabeling": {"host": "Admin host", "port": "Admin port"},
            "placeholders": {
                "host": "127.0.0.1",
                "port": "9545",
                "extra": json.dumps({"provider_uri": DEFAULT_PROVIDER_URI}),
            },
        }

    def _urls(self) -> tuple:
        if self._resolved is None:
            admin, provider = self._admin_url, self._provider_uri
            if admin is None or provider is None:
                conn_admin, conn_provider = self._from_connection()
                admin = admin or conn_admin
                provider = provider or conn_provider
            self._resolved = (admin.rstrip("/"), provider)
        return self._resolved

    def _from_connection(self) -> tuple:
        try:
            conn = self.get_connection(self.nodewatch_conn_id)
        except Exception as e:
            # AirflowNotFoundException, whose module differs between Airflow versions.
            missing = type(e).__name__ == "AirflowNotFoundException"
            if self.nodewatch_conn_id != DEFAULT_CONN_ID or not missing:
                raise
            self.log.info(
                "no connection %s: nodewatch's defaults %s, %s",
                DEFAULT_CONN_ID, DEFAULT_ADMIN_URL, DEFAULT_PROVIDER_URI,
            )
            return DEFAULT_ADMIN_URL, DEFAULT_PROVIDER_URI
        host = conn.host or "127.0.0.1"
        if "://" not in host:
            host = "http://" + host
        admin = f"{host}:{conn.port}" if conn.port else host
        extra = conn.extra_dejson or {}
        return admin, extra.get("provider_uri", DEFAULT_PROVIDER_URI)

    @property
    def admin_url(self) -> str:
        return self._urls()[0]

    @property
    def provider_uri(self) -> str:
        return self._urls()[1]

    def _get(self, path: str):
        return _OPENER.open(self.admin_url + path, timeout=self.http_timeout)

    def readyz(self) -> tuple:
        """``(True, body)`` when ``/readyz`` answers 200, else ``(False, why)``."""
        try:
            with self._get("/readyz") as answer:
                return True, _body(answer)
        except urllib.error.HTTPError as e:
            return False, f"nodewatch is not ready ({e.code}): {_body(e)}"
        except (OSError, ValueError) as e:
            return False, f"cannot reach nodewatch at {self.admin_url}: {e}"

    def status(self) -> dict:
        """The ``/status`` document."""
        try:
            with self._get("/status") as answer:
                return json.loads(answer.read())
        except (OSError, ValueError) as e:
            raise AirflowException(f"cannot read {self.admin_url}/status: {e}") from e

    def chain_id(self) -> int:
        """``eth_chainId`` through the provider URI: proves the URI reaches a node."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        request = urllib.request.Request(
            self.provider_uri, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=self.http_timeout) as answer:
                reply = json.loads(answer.read())
            return int(reply["result"], 16)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise AirflowException(f"eth_chainId through {self.provider_uri} failed: {e}") from e

    def check(self) -> Readiness:
        """Ready when ``/readyz`` answers 200 and the provider URI serves nodewatch's chain.

        A provider URI that answers for another chain than nodewatch's is a configuration
        error: it raises instead of waiting.
        """
        ready, reason = self.readyz()
        if not ready:
            return Readiness(False, reason)
        summary = summarize(self.status())
        try:
            chain = self.chain_id()
        except AirflowException as e:
            return Readiness(False, str(e), summary)
        if summary["chain_id"] is not None and chain != summary["chain_id"]:
            raise AirflowException(
                f"{self.provider_uri} serves chain {chain}, but nodewatch at {self.admin_url} "
                f"serves chain {summary['chain_id']}: provider_uri is not this nodewatch"
            )
        return Readiness(True, reason, summary)
