""":class:`NodewatchReadySensor`: the export DAG's first task.

ethereum-etl-airflow's ``node_watch`` task (#14/#15) checked the node at the start of the DAG
and passed the provider URI to later tasks through XCom; its review noted that a connection
check misses a node that answers but is not synced. Here the check is nodewatch's
``/readyz``: 200 only when an upstream is healthy, in sync and on the majority's blocks. And
the URI handed on is nodewatch's, which keeps routing around dead, lagging or forked nodes
for the whole export, not only at its start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from nodewatch_provider._compat import (
    AirflowException,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
)
from nodewatch_provider.hooks.nodewatch import (
    DEFAULT_CONN_ID,
    DEFAULT_HTTP_TIMEOUT,
    NodewatchHook,
    Readiness,
    Summary,
)
from nodewatch_provider.triggers.nodewatch import NodewatchReadyTrigger


class NodewatchReadySensor(BaseSensorOperator):
    """Waits until nodewatch is ready, then pushes to XCom what later tasks need.

    Ready: ``/readyz`` answers 200, ``/status`` can be read and ``eth_chainId`` through the
    provider URI answers nodewatch's chain. Anything short of that (nodewatch down or
    restarting, an HTTP error, an answer cut short) is "not ready": the sensor waits, poking or
    deferred, until its own ``timeout``. Only a provider URI on another chain than nodewatch's
    fails the task at once. XCom on success:

    * ``provider_uri``: the JSON-RPC URL the export tasks should use;
    * ``status``: the ``/status`` summary (``serving``, ``best_head``, ``chain_id``,
      ``upstreams`` with rank, state, head and lag, and the names of the ``lagging``,
      ``forked`` and ``unhealthy`` ones);
    * ``return_value``: both, as ``{"provider_uri": ..., "status": ...}``.

    :param nodewatch_conn_id: a ``nodewatch`` connection (admin URL, extra ``provider_uri``).
    :param admin_url: the admin URL; overrides the connection's. Templated.
    :param provider_uri: the JSON-RPC URL; overrides the connection's. Templated.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param http_timeout: seconds per HTTP call to nodewatch.

    The sensor's own ``poke_interval``, ``timeout``, ``mode`` and ``soft_fail`` apply.
    """

    template_fields: Sequence[str] = ("admin_url", "provider_uri")
    ui_color = "#c6e2ff"

    def __init__(
        self,
        *,
        nodewatch_conn_id: str = DEFAULT_CONN_ID,
        admin_url: str | None = None,
        provider_uri: str | None = None,
        deferrable: bool = False,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.nodewatch_conn_id = nodewatch_conn_id
        self.admin_url = admin_url
        self.provider_uri = provider_uri
        self.deferrable = deferrable
        self.http_timeout = http_timeout
        self._last_reason: str | None = None

    def hook(self) -> NodewatchHook:
        """The hook for this sensor's connection and URLs."""
        return NodewatchHook(
            nodewatch_conn_id=self.nodewatch_conn_id,
            admin_url=self.admin_url or None,
            provider_uri=self.provider_uri or None,
            http_timeout=self.http_timeout,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        hook = self.hook()
        result = hook.check()
        if not result.ready or result.summary is None:
            self._log_waiting(result)
            return False
        return PokeReturnValue(True, self._publish(context, hook.provider_uri, result.summary))

    def execute(self, context: Context) -> Any:
        """Pokes, or with ``deferrable=True`` checks once and defers to the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        hook = self.hook()
        result = hook.check()
        if result.ready and result.summary is not None:
            return self._publish(context, hook.provider_uri, result.summary)
        self._log_waiting(result)
        self.defer(
            trigger=NodewatchReadyTrigger(
                admin_url=hook.admin_url,
                provider_uri=hook.provider_uri,
                poke_interval=self.poke_interval,
                http_timeout=self.http_timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Where the deferred sensor resumes when its trigger fired."""
        if not event or event.get("status") != "ready":
            message = (event or {}).get("message", "the trigger fired without an event")
            raise AirflowException(f"nodewatch readiness: {message}")
        return self._publish(context, event["provider_uri"], event["summary"])

    def _log_waiting(self, result: Readiness) -> None:
        # Each reason once in a row: a long wait does not fill the log with one line.
        if result.reason != self._last_reason:
            self.log.info("waiting: %s", result.reason)
            self._last_reason = result.reason

    def _publish(self, context: Context, provider_uri: str, summary: Summary) -> dict[str, Any]:
        ti = context["ti"]
        ti.xcom_push(key="provider_uri", value=provider_uri)
        ti.xcom_push(key="status", value=summary)
        self.log.info(
            "nodewatch is ready: serving %s at head %s (chain %s); lagging %s, forked %s, "
            "unhealthy %s; provider URI %s",
            summary.get("serving"),
            summary.get("best_head"),
            summary.get("chain_id"),
            summary.get("lagging"),
            summary.get("forked"),
            summary.get("unhealthy"),
            provider_uri,
        )
        for u in summary.get("upstreams", []):
            self.log.info(
                "  rank %s %s: %s, head %s, lag %s",
                u["rank"],
                u["name"],
                u["state"],
                u["head"],
                u["lag"],
            )
        return {"provider_uri": provider_uri, "status": summary}
