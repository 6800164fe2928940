"""The deferred wait of :class:`~nodewatch_provider.sensors.nodewatch.NodewatchReadySensor`.

Runs in the triggerer: asks nodewatch every ``poke_interval`` seconds (the blocking HTTP call
in a thread, so the triggerer's event loop never waits on it) and fires once it is ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from nodewatch_provider._compat import AirflowException, BaseTrigger, TriggerEvent
from nodewatch_provider.hooks.nodewatch import DEFAULT_HTTP_TIMEOUT, NodewatchHook


class NodewatchReadyTrigger(BaseTrigger):
    """Fires ``{"status": "ready", "provider_uri": ..., "summary": ...}`` when nodewatch is
    ready, or ``{"status": "error", "message": ...}`` on a configuration error (a provider URI
    on another chain). Until then every failed check, ``/status`` errors included, is a wait
    of ``poke_interval`` seconds."""

    def __init__(
        self,
        admin_url: str,
        provider_uri: str,
        poke_interval: float,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Airflow
        self.admin_url = admin_url
        self.provider_uri = provider_uri
        self.poke_interval = poke_interval
        self.http_timeout = http_timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "admin_url": self.admin_url,
                "provider_uri": self.provider_uri,
                "poke_interval": self.poke_interval,
                "http_timeout": self.http_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = NodewatchHook(
            admin_url=self.admin_url,
            provider_uri=self.provider_uri,
            http_timeout=self.http_timeout,
        )
        last: str | None = None
        while True:
            try:
                result = await asyncio.to_thread(hook.check)
            except AirflowException as e:
                yield TriggerEvent({"status": "error", "message": str(e)})
                return
            if result.ready:
                yield TriggerEvent(
                    {
                        "status": "ready",
                        "provider_uri": self.provider_uri,
                        "summary": result.summary,
                    }
                )
                return
            if result.reason != last:
                self.log.info("waiting: %s", result.reason)
                last = result.reason
            await asyncio.sleep(self.poke_interval)
