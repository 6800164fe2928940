"""Daily Ethereum export through nodewatch: ethereum-etl-airflow's export DAG.

The tasks are those of blockchain-etl/ethereum-etl-airflow's
``dags/ethereumetl_airflow/build_export_dag.py``, with the day's block range as a task of its
own (there, each branch computes it) and a readiness sensor in front, all on the
``airflow-provider-nodewatch`` package (``providers/airflow-provider-nodewatch``)::

    check_nodewatch >> get_block_range_for_date >> export_blocks_and_transactions
                                                     >> export_receipts_and_logs
                                                     >> extract_token_transfers
                    get_block_range_for_date >> export_traces      (a second branch, as there)
                                                     >> extract_contracts >> extract_tokens

For each day (the run's logical date, ``ds``, UTC) everything goes to local files, one per
entity, instead of a bucket::

    $ETHEREUM_EXPORT_DIR/<ds>/block_range.txt        "<first>,<last>" (get_block_range_for_date)
    $ETHEREUM_EXPORT_DIR/<ds>/blocks.csv, transactions.csv, transaction_hashes.txt,
        receipts.csv, logs.csv, token_transfers.csv, traces.csv, contracts.csv, tokens.csv

Each task writes into a temporary directory beside them and renames its files into place when
the command has succeeded (NodewatchExportOperator's ``outputs``), so a file that exists is
complete, and a failed or retried task leaves nothing half-written.

``check_nodewatch`` (NodewatchReadySensor) waits until nodewatch's ``/readyz`` answers 200
(an upstream healthy, in sync and on the majority's blocks) and pushes to XCom the provider
URI every later task uses (``provider_uri``) and the ``/status`` summary (``status``): the
``node_watch`` task of ethereum-etl-airflow #14/#15, with a check that an unsynced node
cannot pass.

The provider is nodewatch on the worker (``http://127.0.0.1:8545``, a sidecar or a local
service), never a node directly: when a node dies or falls behind mid-export, nodewatch fails
over inside the same request, so the task neither fails nor writes a silent gap.

Which program runs the commands: the DAG param ``exporter`` (``airflow dags test -c
'{"exporter": "ethereumetl"}'``, or the trigger form), whose default is ``$ETHEREUM_EXPORTER``:

* ``nodewatch-export``: each command that ``nodewatch-export`` has runs with it; the others
  fall back to ``ethereumetl``. Whether it has a command is asked once per command and worker
  process with ``nodewatch-export <command> --help`` (exit 0: it has it), so a newer
  nodewatch-export takes over more commands without an edit here. The task log says which
  program ran each command ("running (<exporter> chosen): <program> <command> ...").
* ``ethereumetl``: ethereum-etl runs every command.

Settings (environment of the Airflow scheduler and workers):
    ETHEREUM_PROVIDER_URI     JSON-RPC endpoint, default http://127.0.0.1:8545 (nodewatch)
    NODEWATCH_ADMIN_URL       nodewatch admin, default http://127.0.0.1:9545 (readiness sensor)
    NODEWATCH_READY_TIMEOUT   seconds check_nodewatch waits for a ready nodewatch before it
                              fails (and is retried), default 600; it asks every 5 s
    ETHEREUM_EXPORT_DIR       output root, default /data/ethereum
    ETHEREUMETL_BIN           the ethereumetl executable, default "ethereumetl" (on PATH).
                              extract_tokens makes contract calls, which need an ethereum-etl
                              whose eth-abi works: 2.4.2 on Python 3.10 or older (on 3.11 it
                              fails with parsimonious' VisitationError).
    NODEWATCH_EXPORT_BIN      the nodewatch-export executable, default "nodewatch-export"
                              (`pip install nodewatch` puts it on PATH)
    ETHEREUM_EXPORTER         default of the ``exporter`` param: "ethereumetl" (the default)
                              or "nodewatch-export"
    ETHEREUM_EXPORT_BATCH_SIZE    -b, blocks or receipts per JSON-RPC batch, default 100
    ETHEREUM_EXPORT_MAX_WORKERS   -w, default 5. ethereumetl writes its batches in the order
                              they finish, so only -w 1 gives the same file bytes every time
                              (nodewatch-export writes block order whatever -w)
    ETHEREUM_EXPORT_MAX_ACTIVE_RUNS  days exported at once (backfill, catch-up), default 3
    ETHEREUM_EXPORT_RETRIES   retries of a failed task, default 5 (5 minutes apart)
    ETHEREUM_EXPORT_GENESIS_TRACES, ETHEREUM_EXPORT_DAOFORK_TRACES
                              "true" adds mainnet's genesis allocations resp. DAO fork
                              transfers to the traces (export_traces --genesis-traces /
                              --daofork-traces, as ethereum-etl-airflow does for mainnet)

Heavy work runs in subprocesses; importing this file needs only Airflow, the provider and the
standard library, so the scheduler parses it fast. It imports on Airflow 3.x (``airflow.sdk``)
and 2.10.
"""

import os
from datetime import datetime, timedelta

try:  # Airflow 3.x
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.10
    from airflow import DAG
    from airflow.models.param import Param

from nodewatch_provider.operators.export import (
    EXPORTERS,
    NodewatchBlockRangeOperator,
    NodewatchExportOperator,
)
from nodewatch_provider.sensors.nodewatch import NodewatchReadySensor

PROVIDER_URI = os.environ.get("ETHEREUM_PROVIDER_URI", "http://127.0.0.1:8545")
NODEWATCH_ADMIN_URL = os.environ.get("NODEWATCH_ADMIN_URL", "http://127.0.0.1:9545")
EXPORT_DIR = os.environ.get("ETHEREUM_EXPORT_DIR", "/data/ethereum")
ETHEREUMETL = os.environ.get("ETHEREUMETL_BIN", "ethereumetl")
NODEWATCH_EXPORT = os.environ.get("NODEWATCH_EXPORT_BIN", "nodewatch-export")

DEFAULT_EXPORTER = os.environ.get("ETHEREUM_EXPORTER", "ethereumetl")
if DEFAULT_EXPORTER not in EXPORTERS:
    raise ValueError(f"ETHEREUM_EXPORTER={DEFAULT_EXPORTER!r}: not one of {EXPORTERS}")

BATCH_SIZE = int(os.environ.get("ETHEREUM_EXPORT_BATCH_SIZE", "100"))
MAX_WORKERS = int(os.environ.get("ETHEREUM_EXPORT_MAX_WORKERS", "5"))
MAX_ACTIVE_RUNS = int(os.environ.get("ETHEREUM_EXPORT_MAX_ACTIVE_RUNS", "3"))
RETRIES = int(os.environ.get("ETHEREUM_EXPORT_RETRIES", "5"))
READY_TIMEOUT = float(os.environ.get("NODEWATCH_READY_TIMEOUT", "600"))
GENESIS_TRACES = os.environ.get("ETHEREUM_EXPORT_GENESIS_TRACES", "false").lower() == "true"
DAOFORK_TRACES = os.environ.get("ETHEREUM_EXPORT_DAOFORK_TRACES", "false").lower() == "true"

# What the tasks read from XCom and the run: the provider URI the sensor checked, the day's
# block range, the day's directory.
PROVIDER = "{{ ti.xcom_pull(task_ids='check_nodewatch', key='provider_uri') }}"
START = "{{ ti.xcom_pull(task_ids='get_block_range_for_date', key='start') }}"
END = "{{ ti.xcom_pull(task_ids='get_block_range_for_date', key='end') }}"
DAY = os.path.join(EXPORT_DIR, "{{ ds }}")


def day(name):
    """A file of the run's day: ``$ETHEREUM_EXPORT_DIR/<ds>/<name>``."""
    return os.path.join(DAY, name)


default_args = {
    "owner": "ethereum-etl",
    "depends_on_past": False,
    "retries": RETRIES,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=15),  # as ethereum-etl-airflow's export tasks
}

with DAG(
    dag_id="ethereum_export_through_nodewatch",
    description="Daily ethereum-etl export (blocks, transactions, receipts, logs, token "
    "transfers, traces, contracts, tokens) through nodewatch",
    default_args=default_args,
    start_date=datetime(2015, 7, 30),
    # As ethereum-etl-airflow: the run for day D starts at D+1 00:00 UTC. Until the node has a
    # block of D+1, get_block_range_for_date cannot tell where D ends and fails; its retry
    # (5 minutes later) finds it. `airflow dags backfill -s D1 -e D3` runs D1, D2 and D3.
    schedule="@daily",
    catchup=False,  # True backfills from genesis, as ethereum-etl-airflow does
    max_active_runs=MAX_ACTIVE_RUNS,
    params={
        "exporter": Param(
            DEFAULT_EXPORTER,
            type="string",
            enum=list(EXPORTERS),
            description="nodewatch-export (ethereumetl for the commands it lacks) or "
            "ethereumetl for every command",
        ),
    },
    tags=["ethereum", "etl", "nodewatch"],
) as dag:

    def export(task_id, **kwargs):
        """A NodewatchExportOperator with the DAG's programs and exporter switch."""
        return NodewatchExportOperator(
            task_id=task_id,
            exporter="{{ params.exporter }}",
            nodewatch_export_bin=NODEWATCH_EXPORT,
            ethereumetl_bin=ETHEREUMETL,
            **kwargs,
        )

    check_nodewatch = NodewatchReadySensor(
        task_id="check_nodewatch",
        admin_url=NODEWATCH_ADMIN_URL,
        provider_uri=PROVIDER_URI,
        poke_interval=5,
        timeout=READY_TIMEOUT,
    )
    get_block_range_for_date = NodewatchBlockRangeOperator(
        task_id="get_block_range_for_date",
        date="{{ ds }}",
        provider_uri=PROVIDER,
        output_file=day("block_range.txt"),
        exporter="{{ params.exporter }}",
        nodewatch_export_bin=NODEWATCH_EXPORT,
        ethereumetl_bin=ETHEREUMETL,
    )
    export_blocks_and_transactions = export(
        "export_blocks_and_transactions",
        command="export_blocks_and_transactions",
        arguments=["-s", START, "-e", END, "-p", PROVIDER, "-b", BATCH_SIZE, "-w", MAX_WORKERS,
                   "--blocks-output", day("blocks.csv"),
                   "--transactions-output", day("transactions.csv")],
        outputs=[day("blocks.csv"), day("transactions.csv")],
    )
    # The day's transaction hashes (as ethereum-etl-airflow extracts them in this task), then
    # their receipts and logs.
    export_receipts_and_logs = export(
        "export_receipts_and_logs",
        commands=[
            ["extract_csv_column", "-c", "hash", "-i", day("transactions.csv"),
             "-o", day("transaction_hashes.txt")],
            ["export_receipts_and_logs", "-t", day("transaction_hashes.txt"), "-p", PROVIDER,
             "-b", BATCH_SIZE, "-w", MAX_WORKERS,
             "--receipts-output", day("receipts.csv"), "--logs-output", day("logs.csv")],
        ],
        inputs=[day("transactions.csv")],
        outputs=[day("transaction_hashes.txt"), day("receipts.csv"), day("logs.csv")],
    )
    extract_token_transfers = export(
        "extract_token_transfers",
        command="extract_token_transfers",
        arguments=["-l", day("logs.csv"), "-b", BATCH_SIZE, "-w", MAX_WORKERS,
                   "-o", day("token_transfers.csv")],
        inputs=[day("logs.csv")],
        outputs=[day("token_transfers.csv")],
    )
    export_traces = export(
        "export_traces",
        command="export_traces",
        arguments=["-s", START, "-e", END, "-p", PROVIDER, "-b", BATCH_SIZE, "-w", MAX_WORKERS,
                   "--genesis-traces" if GENESIS_TRACES else "--no-genesis-traces",
                   "--daofork-traces" if DAOFORK_TRACES else "--no-daofork-traces",
                   "-o", day("traces.csv")],
        outputs=[day("traces.csv")],
    )
    extract_contracts = export(
        "extract_contracts",
        command="extract_contracts",
        arguments=["-t", day("traces.csv"), "-b", BATCH_SIZE, "-w", MAX_WORKERS,
                   "-o", day("contracts.csv")],
        inputs=[day("traces.csv")],
        outputs=[day("contracts.csv")],
    )
    extract_tokens = export(
        "extract_tokens",
        command="extract_tokens",
        arguments=["-c", day("contracts.csv"), "-p", PROVIDER, "-w", MAX_WORKERS,
                   "-o", day("tokens.csv")],
        inputs=[day("contracts.csv")],
        outputs=[day("tokens.csv")],
    )

    check_nodewatch >> get_block_range_for_date
    get_block_range_for_date >> export_blocks_and_transactions >> export_receipts_and_logs \
        >> extract_token_transfers
    get_block_range_for_date >> export_traces >> extract_contracts >> extract_tokens
