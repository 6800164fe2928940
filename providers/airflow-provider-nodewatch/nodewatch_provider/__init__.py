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

__version__ = "0.1.0"


def get_provider_info():
    """What Airflow's providers manager reads: the package and its connection type."""
    return {
        "package-name": "airflow-provider-nodewatch",
        "name": "nodewatch",
        "description": "nodewatch, the JSON-RPC failover proxy for Ethereum ETL exports: "
        "readiness sensor and nodewatch-export / ethereumetl operators.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "nodewatch",
                "hook-class-name": "nodewatch_provider.hooks.nodewatch.NodewatchHook",
            }
        ],
    }
