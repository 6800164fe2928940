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

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO, Any

from nodewatch_provider._compat import AirflowException, BaseHook

DEFAULT_ADMIN_URL = "http://127.0.0.1:9545"
DEFAULT_PROVIDER_URI = "http://127.0.0.1:8545"
DEFAULT_CONN_ID = "nodewatch_default"
#: Seconds one HTTP call to nodewatch may take.
DEFAULT_HTTP_TIMEOUT = 10.0

#: What one HTTP exchange with nodewatch can raise: connection and timeout errors and HTTP error
#: answers (``OSError``: ``URLError``, ``HTTPError``, ``RemoteDisconnected``), an answer cut
#: short or garbled (``http.client.HTTPException``: ``IncompleteRead``, ``BadStatusLine``), a
#: body that is not JSON or not UTF-8 (``ValueError``).
HTTP_ERRORS = (OSError, http.client.HTTPException, ValueError)

#: A ``/status`` summary (:func:`summarize`), as it goes to XCom.
Summary = dict[str, Any]

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Readiness:
    """One readiness check: whether the export may start, and why not if it may not."""

    ready: bool
    #: The ``/readyz`` answer, or why nodewatch is not ready or could not be asked.
    reason: str
    #: The ``/status`` summary (:func:`summarize`), when nodewatch answered.
    summary: Summary | None = None


def state(upstream: dict[str, Any]) -> str:
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
    return str(status)


def summarize(status: dict[str, Any]) -> Summary:
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
        for u in status.get("upstreams") or []
        if isinstance(u, dict)
    ]

    def named(*states: str) -> list[Any]:
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


def _body(answer: IO[bytes]) -> str:
    try:
        return answer.read().decode("utf-8", "replace").strip()
    except HTTP_ERRORS as e:
        return f"(body unreadable: {e})"


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
        admin_url: str | None = None,
        provider_uri: str | None = None,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.nodewatch_conn_id = nodewatch_conn_id
        self._admin_url = admin_url
        self._provider_uri = provider_uri
        self.http_timeout = http_timeout
        self._resolved: tuple[str, str] | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: admin host and port, the provider URI in the extra."""
        return {
            "hidden_fields": ["schema", "login", "password"],
            "relabeling": {"host": "Admin host", "port": "Admin port"},
            "placeholders": {
                "host": "127.0.0.1",
                "port": "9545",
                "extra": json.dumps({"provider_uri": DEFAULT_PROVIDER_URI}),
            },
        }

    def _urls(self) -> tuple[str, str]:
        if self._resolved is None:
            admin, provider = self._admin_url, self._provider_uri
            if admin is None or provider is None:
                conn_admin, conn_provider = self._from_connection()
                admin = admin or conn_admin
                provider = provider or conn_provider
            self._resolved = (admin.rstrip("/"), provider)
        return self._resolved

    def _from_connection(self) -> tuple[str, str]:
        try:
            conn = self.get_connection(self.nodewatch_conn_id)
        except Exception as e:
            # AirflowNotFoundException, whose module differs between Airflow versions.
            missing = type(e).__name__ == "AirflowNotFoundException"
            if self.nodewatch_conn_id != DEFAULT_CONN_ID or not missing:
                raise
            self.log.info(
                "no connection %s: nodewatch's defaults %s, %s",
                DEFAULT_CONN_ID,
                DEFAULT_ADMIN_URL,
                DEFAULT_PROVIDER_URI,
            )
            return DEFAULT_ADMIN_URL, DEFAULT_PROVIDER_URI
        host = conn.host or "127.0.0.1"
        if "://" not in host:
            host = "http://" + host
        admin = f"{host}:{conn.port}" if conn.port else host
        extra = conn.extra_dejson or {}
        return admin, str(extra.get("provider_uri", DEFAULT_PROVIDER_URI))

    @property
    def admin_url(self) -> str:
        """The admin listener's URL, without a trailing slash."""
        return self._urls()[0]

    @property
    def provider_uri(self) -> str:
        """The JSON-RPC URL the export tasks use (nodewatch's listen address)."""
        return self._urls()[1]

    def _get(self, path: str) -> http.client.HTTPResponse:
        answer: http.client.HTTPResponse = _OPENER.open(
            self.admin_url + path, timeout=self.http_timeout
        )
        return answer

    def readyz(self) -> tuple[bool, str]:
        """``(True, body)`` when ``/readyz`` answers 200, else ``(False, why)``."""
        try:
            with self._get("/readyz") as answer:
                return True, _body(answer)
        except urllib.error.HTTPError as e:
            return False, f"nodewatch is not ready ({e.code}): {_body(e)}"
        except HTTP_ERRORS as e:
            return False, f"cannot reach nodewatch at {self.admin_url}: {e}"

    def status(self) -> dict[str, Any]:
        """The ``/status`` document. Raises :class:`AirflowException` when it cannot be read
        (no answer, an HTTP error, a body that is not a JSON object)."""
        try:
            with self._get("/status") as answer:
                document = json.loads(answer.read())
        except HTTP_ERRORS as e:
            raise AirflowException(f"cannot read {self.admin_url}/status: {e}") from e
        if not isinstance(document, dict):
            raise AirflowException(
                f"cannot read {self.admin_url}/status: not a JSON object: {document!r:.100}"
            )
        return document

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
        except (*HTTP_ERRORS, KeyError, TypeError) as e:
            raise AirflowException(f"eth_chainId through {self.provider_uri} failed: {e}") from e

    def _other_chain(self, chain: int, summary: Summary) -> str | None:
        """Why the provider URI is not this nodewatch's, or None when it may be."""
        if summary["chain_id"] is None or chain == summary["chain_id"]:
            return None
        return (
            f"{self.provider_uri} serves chain {chain}, but nodewatch at {self.admin_url} "
            f"serves chain {summary['chain_id']}: provider_uri is not this nodewatch"
        )

    def check(self) -> Readiness:
        """Ready when ``/readyz`` answers 200, ``/status`` can be read and the provider URI
        serves nodewatch's chain.

        Every failure to reach or read nodewatch is "not ready" (the sensor asks again), a
        ``/status`` that fails after ``/readyz`` answered too (a restart, a proxy in between).
        Only a provider URI that answers for another chain than nodewatch's raises: that is a
        configuration error, which no waiting mends.
        """
        ready, reason = self.readyz()
        if not ready:
            return Readiness(False, reason)
        try:
            summary = summarize(self.status())
        except AirflowException as e:
            return Readiness(False, str(e))
        try:
            chain = self.chain_id()
        except AirflowException as e:
            return Readiness(False, str(e), summary)
        other = self._other_chain(chain, summary)
        if other is not None:
            raise AirflowException(other)
        return Readiness(True, reason, summary)

    def test_connection(self) -> tuple[bool, str]:
        """The connection test of Airflow's UI ("Test") and of ``airflow connections test``:
        ``(True, what answered)`` when the admin URL answers ``/status`` and the provider URI
        answers ``eth_chainId`` for nodewatch's chain, else ``(False, why not)``.

        Readiness is reported, not required: while nodewatch has no usable node, a provider
        URI through it cannot answer ``eth_chainId``, and the connection may still be right.
        """
        try:
            summary = summarize(self.status())
        except Exception as e:  # the message is the answer: a missing connection, too
            return False, str(e)
        healthy = f"{len(summary['healthy'])} of {len(summary['upstreams'])} upstreams healthy"
        try:
            chain = self.chain_id()
        except AirflowException as e:
            if summary["ready"]:
                return False, str(e)
            return True, (
                f"nodewatch at {self.admin_url} answers: not ready yet ({healthy}), so the "
                f"provider URI could not be checked: {e}"
            )
        other = self._other_chain(chain, summary)
        if other is not None:
            return False, other
        readiness = "ready" if summary["ready"] else "not ready yet"
        return True, (
            f"nodewatch at {self.admin_url} answers: {readiness}, serving {summary['serving']} "
            f"at head {summary['best_head']}, {healthy}; {self.provider_uri} serves its chain "
            f"{chain}"
        )
