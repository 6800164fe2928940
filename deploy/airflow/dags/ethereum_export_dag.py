"""Daily Ethereum export through nodewatch: ethereum-etl-airflow's export DAG.

The tasks are those of blockchain-etl/ethereum-etl-airflow's
``dags/ethereumetl_airflow/build_export_dag.py``, with the day's block range as a task of its
own (there, each branch computes it) and a readiness check in front::

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
the command has succeeded, so a file that exists is complete, and a failed or retried task
leaves nothing half-written.

The provider is nodewatch on the worker (``http://127.0.0.1:8545``, a sidecar or a local
service), never a node directly: when a node dies or falls behind mid-export, nodewatch fails
over inside the same request, so the task neither fails nor writes a silent gap.

Which program runs the commands: the DAG param ``exporter`` (``airflow dags test -c
'{"exporter": "ethereumetl"}'``, or the trigger form), whose default is ``$ETHEREUM_EXPORTER``:

* ``nodewatch-export``: each command that ``nodewatch-export`` has runs with it; the others
  fall back to ``ethereumetl``. Whether it has a command is asked once per command and worker
  process with ``nodewatch-export <command> --help`` (exit 0: it has it), so a newer
  nodewatch-export takes over more commands without an edit here. The task log says which
  program ran each command.
* ``ethereumetl``: ethereum-etl runs every command.

Settings (environment of the Airflow scheduler and workers):
    ETHEREUM_PROVIDER_URI     JSON-RPC endpoint, default http://127.0.0.1:8545 (nodewatch)
    NODEWATCH_ADMIN_URL       nodewatch admin, default http://127.0.0.1:9545 (readiness check)
    ETHEREUM_EXPORT_DIR       output root, default /data/ethereum
    ETHEREUMETL_BIN           the ethereumetl executable, default "ethereumetl" (on PATH).
                              extract_tokens makes contract calls, which need an ethereum-etl
                              whose eth-abi works: 2.4.2 on Python 3.10 or older (on 3.11 it
                              fails with parsimonious' VisitationError).
    NODEWATCH_EXPORT_BIN      the nodewatch-export executable, default "nodewatch-export"
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

Heavy work runs in subprocesses; importing this file needs only Airflow and the standard
library, so the scheduler parses it fast.
"""

import functools
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.python import PythonOperator

PROVIDER_URI = os.environ.get("ETHEREUM_PROVIDER_URI", "http://127.0.0.1:8545")
NODEWATCH_ADMIN_URL = os.environ.get("NODEWATCH_ADMIN_URL", "http://127.0.0.1:9545")
EXPORT_DIR = os.environ.get("ETHEREUM_EXPORT_DIR", "/data/ethereum")
ETHEREUMETL = os.environ.get("ETHEREUMETL_BIN", "ethereumetl")
NODEWATCH_EXPORT = os.environ.get("NODEWATCH_EXPORT_BIN", "nodewatch-export")

EXPORTERS = ("ethereumetl", "nodewatch-export")
DEFAULT_EXPORTER = os.environ.get("ETHEREUM_EXPORTER", "ethereumetl")
if DEFAULT_EXPORTER not in EXPORTERS:
    raise ValueError(f"ETHEREUM_EXPORTER={DEFAULT_EXPORTER!r}: not one of {EXPORTERS}")

BATCH_SIZE = int(os.environ.get("ETHEREUM_EXPORT_BATCH_SIZE", "100"))
MAX_WORKERS = int(os.environ.get("ETHEREUM_EXPORT_MAX_WORKERS", "5"))
MAX_ACTIVE_RUNS = int(os.environ.get("ETHEREUM_EXPORT_MAX_ACTIVE_RUNS", "3"))
RETRIES = int(os.environ.get("ETHEREUM_EXPORT_RETRIES", "5"))
GENESIS_TRACES = os.environ.get("ETHEREUM_EXPORT_GENESIS_TRACES", "false").lower() == "true"
DAOFORK_TRACES = os.environ.get("ETHEREUM_EXPORT_DAOFORK_TRACES", "false").lower() == "true"


# === running the commands =====================================================================


@functools.lru_cache(maxsize=None)
def nodewatch_export_has(command):
    """Whether nodewatch-export has ``command`` (``nodewatch-export <command> --help`` exits 0).

    Asked once per command and worker process. A nodewatch-export that cannot be run at all is
    a configuration error, not a missing command: the task fails with it.
    """
    try:
        done = subprocess.run(
            [NODEWATCH_EXPORT, command, "--help"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
    except OSError as e:
        raise RuntimeError(f"cannot run {NODEWATCH_EXPORT} (NODEWATCH_EXPORT_BIN): {e}") from e
    return done.returncode == 0


def _program(exporter, command):
    if exporter == "nodewatch-export" and nodewatch_export_has(command):
        return NODEWATCH_EXPORT
    return ETHEREUMETL


def _run(params, command, *args):
    """Runs one export command; its output goes to the task log, failure fails the task."""
    exporter = params.get("exporter", DEFAULT_EXPORTER)
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter={exporter!r}: not one of {EXPORTERS}")
    program = _program(exporter, command)
    argv = [program, command, *[str(a) for a in args]]
    print(f"running ({exporter} chosen): {' '.join(argv)}", flush=True)
    subprocess.run(argv, check=True)


class _Outputs:
    """A task's output files: written under ``<day>/.<task_id>.tmp/`` with their final names
    (ethereum-etl picks the format by the extension), renamed into ``<day>/`` on success."""

    def __init__(self, ds, task_id):
        self.day = os.path.join(EXPORT_DIR, ds)
        self.tmp = os.path.join(self.day, f".{task_id}.tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)

    def input(self, name):
        """A file an earlier task wrote."""
        path = os.path.join(self.day, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: the task that writes it has not run for this day")
        return path

    def output(self, name):
        return os.path.join(self.tmp, name)

    def commit(self):
        for name in sorted(os.listdir(self.tmp)):
            os.replace(os.path.join(self.tmp, name), os.path.join(self.day, name))
        os.rmdir(self.tmp)


def _block_range(ti):
    return (
        ti.xcom_pull(task_ids="get_block_range_for_date", key="start"),
        ti.xcom_pull(task_ids="get_block_range_for_date", key="end"),
    )


# === the tasks ================================================================================


def check_nodewatch(**_):
    """Fails (and is retried) until nodewatch has an upstream that is healthy and in sync."""
    try:
        with urllib.request.urlopen(NODEWATCH_ADMIN_URL + "/readyz", timeout=5) as answer:
            print("nodewatch:", answer.read().decode().strip())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"nodewatch is not ready: {e.read().decode().strip()}") from e
    except OSError as e:
        raise RuntimeError(f"cannot reach nodewatch at {NODEWATCH_ADMIN_URL}: {e}") from e


def get_block_range_for_date(ds, ti, params, **_):
    """The first and last block of the day ``ds``: block_range.txt, and XCom ``start``/``end``."""
    out = _Outputs(ds, "get_block_range_for_date")
    _run(params, "get_block_range_for_date", "-p", PROVIDER_URI, "-d", ds,
         "-o", out.output("block_range.txt"))
    with open(out.output("block_range.txt")) as f:
        start, end = (int(x) for x in f.read().strip().split(","))
    out.commit()
    print(f"{ds}: blocks {start}..={end}")
    ti.xcom_push(key="start", value=start)
    ti.xcom_push(key="end", value=end)


def export_blocks_and_transactions(ds, ti, params, **_):
    start, end = _block_range(ti)
    out = _Outputs(ds, "export_blocks_and_transactions")
    _run(params, "export_blocks_and_transactions",
         "-s", start, "-e", end, "-p", PROVIDER_URI, "-b", BATCH_SIZE, "-w", MAX_WORKERS,
         "--blocks-output", out.output("blocks.csv"),
         "--transactions-output", out.output("transactions.csv"))
    out.commit()


def export_receipts_and_logs(ds, params, **_):
    """The day's transaction hashes (as ethereum-etl-airflow extracts them in this task), then
    their receipts and logs."""
    out = _Outputs(ds, "export_receipts_and_logs")
    _run(params, "extract_csv_column", "-c", "hash",
         "-i", out.input("transactions.csv"), "-o", out.output("transaction_hashes.txt"))
    _run(params, "export_receipts_and_logs",
         "-t", out.output("transaction_hashes.txt"), "-p", PROVIDER_URI,
         "-b", BATCH_SIZE, "-w", MAX_WORKERS,
         "--receipts-output", out.output("receipts.csv"),
         "--logs-output", out.output("logs.csv"))
    out.commit()


def extract_token_transfers(ds, params, **_):
    out = _Outputs(ds, "extract_token_transfers")
    _run(params, "extract_token_transfers",
         "-l", out.input("logs.csv"), "-b", BATCH_SIZE, "-w", MAX_WORKERS,
         "-o", out.output("token_transfers.csv"))
    out.commit()


def export_traces(ds, ti, params, **_):
    start, end = _block_range(ti)
    out = _Outputs(ds, "export_traces")
    _run(params, "export_traces",
         "-s", start, "-e", end, "-p", PROVIDER_URI, "-b", BATCH_SIZE, "-w", MAX_WORKERS,
         "--genesis-traces" if GENESIS_TRACES else "--no-genesis-traces",
         "--daofork-traces" if DAOFORK_TRACES else "--no-daofork-traces",
         "-o", out.output("traces.csv"))
    out.commit()


def extract_contracts(ds, params, **_):
    out = _Outputs(ds, "extract_contracts")
    _run(params, "extract_contracts",
         "-t", out.input("traces.csv"), "-b", BATCH_SIZE, "-w", MAX_WORKERS,
         "-o", out.output("contracts.csv"))
    out.commit()


def extract_tokens(ds, params, **_):
    out = _Outputs(ds, "extract_tokens")
    _run(params, "extract_tokens",
         "-c", out.input("contracts.csv"), "-p", PROVIDER_URI, "-w", MAX_WORKERS,
         "-o", out.output("tokens.csv"))
    out.commit()


# === the DAG ==================================================================================

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

    def task(f):
        return PythonOperator(task_id=f.__name__, python_callable=f)

    block_range = task(check_nodewatch) >> task(get_block_range_for_date)
    block_range >> task(export_blocks_and_transactions) >> task(export_receipts_and_logs) \
        >> task(extract_token_transfers)
    block_range >> task(export_traces) >> task(extract_contracts) >> task(extract_tokens)
