"""Apache Airflow provider for nodewatch, the JSON-RPC failover proxy for Ethereum ETL exports.

Layout:

* ``hooks.nodewatch``: :class:`NodewatchHook`, the ``nodewatch`` connection type (the admin
  URL, and the JSON-RPC provider URI as the extra ``provider_uri``); readiness, ``/status``
  and its summary.
* ``sensors.nodewatch``: :class:`NodewatchReadySensor`, waits until ``/readyz`` answers 200
  (poking, or deferred to the triggerer) and pushes the provider URI and the status summary
  to XCom.
* ``triggers.nodewatch``: :class:`NodewatchReadyTrigger`, the deferred sensor's wait.
* ``operators.export``: :class:`NodewatchExportOperator` (one or more ``nodewatch-export`` or
  ``ethereumetl`` commands, outputs renamed into place on success) and
  :class:`NodewatchBlockRangeOperator` (``get_block_range_for_date``, start/end to XCom).
* ``_compat``: the imports that moved between Airflow 2.10 and 3.x.

``get_provider_info`` is the ``apache_airflow_provider`` entry point.
"""

from __future__ import annotations

from typing import Any

#: The provider's version: the one place it is written (pyproject.toml's is dynamic, flit
#: reads it here).
__version__ = "0.1.0"

#: The integration every hook, operator, sensor and trigger below belongs to.
INTEGRATION = "nodewatch"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads (the ``apache_airflow_provider`` entry point):
    the package, its integration, the modules of its hooks, operators, sensors and triggers,
    and its connection type."""

    def modules(*names: str) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": list(names)}]

    return {
        "package-name": "airflow-provider-nodewatch",
        "name": "nodewatch",
        "description": "nodewatch, the JSON-RPC failover proxy for Ethereum ETL exports: "
        "readiness sensor and nodewatch-export / ethereumetl operators.",
        "versions": [__version__],
        "integrations": [{"integration-name": INTEGRATION, "tags": ["software"]}],
        "hooks": modules("nodewatch_provider.hooks.nodewatch"),
        "operators": modules("nodewatch_provider.operators.export"),
        "sensors": modules("nodewatch_provider.sensors.nodewatch"),
        "triggers": modules("nodewatch_provider.triggers.nodewatch"),
        "connection-types": [
            {
                "connection-type": "nodewatch",
                "hook-class-name": "nodewatch_provider.hooks.nodewatch.NodewatchHook",
            }
        ],
    }
