"""Daily Ethereum export through nodewatch, in the style of blockchain-etl/ethereum-etl-airflow.

For each day (the DAG run's logical date, UTC) it finds the day's block range and exports
blocks, transactions, receipts, logs and token transfers with ethereum-etl 2.4.2 into
``$ETHEREUM_EXPORT_DIR/<date>/``:

    check_nodewatch >> get_block_range >> export_blocks_and_transactions
        >> extract_transaction_hashes >> export_receipts_and_logs >> extract_token_transfers

ethereum-etl's provider is nodewatch on the worker (``http://127.0.0.1:8545``, a sidecar or a
local service), never a node directly: when a node dies or falls behind mid-export, nodewatch
fails over inside the same request, so the task neither fails nor writes a silent gap.

Settings (environment of the Airflow worker):
    ETHEREUM_PROVIDER_URI   JSON-RPC endpoint, default http://127.0.0.1:8545 (nodewatch)
    NODEWATCH_ADMIN_URL     nodewatch admin, default http://127.0.0.1:9545 (readiness check)
    ETHEREUM_EXPORT_DIR     output root, default /data/ethereum
    ETHEREUMETL_BIN         the ethereumetl executable, default "ethereumetl" (on PATH)

Heavy work runs in ``ethereumetl`` subprocesses; importing this file needs only Airflow and
the standard library, so the scheduler parses it fast.
"""

import os
import subprocess
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.python import PythonOperator

PROVIDER_URI = os.environ.get("ETHEREUM_PROVIDER_URI", "http://127.0.0.1:8545")
NODEWATCH_ADMIN_URL = os.environ.get("NODEWATCH_ADMIN_URL", "http://127.0.0.1:9545")
EXPORT_DIR = os.environ.get("ETHEREUM_EXPORT_DIR", "/data/ethereum")
ETHEREUMETL = os.environ.get("ETHEREUMETL_BIN", "ethereumetl")

# ethereum-etl's batch size (blocks or receipts per JSON-RPC batch) and worker threads.
BATCH_SIZE = 100
MAX_WORKERS = 5


def _day_dir(ds):
    path = os.path.join(EXPORT_DIR, ds)
    os.makedirs(path, exist_ok=True)
    return path


def _ethereumetl(*args):
    """Runs one ethereumetl command; its output goes to the task log, failure fails the task."""
    command = [ETHEREUMETL, *[str(a) for a in args]]
    print("running:", " ".join(command))
    subprocess.run(command, check=True)


def check_nodewatch(**_):
    """Fails (and is retried) until nodewatch has an upstream that is healthy and in sync."""
    try:
        with urllib.request.urlopen(NODEWATCH_ADMIN_URL + "/readyz", timeout=5) as answer:
            print("nodewatch:", answer.read().decode().strip())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"nodewatch is not ready: {e.read().decode().strip()}") from e
    except OSError as e:
        raise RuntimeError(f"cannot reach nodewatch at {NODEWATCH_ADMIN_URL}: {e}") from e


def get_block_range(ds, ti, **_):
    """The first and last block of the day ``ds``; pushed to XCom as ``start``/``end``."""
    out = os.path.join(_day_dir(ds), "block_range.txt")
    _ethereumetl("get_block_range_for_date", "-p", PROVIDER_URI, "-d", ds, "-o", out)
    with open(out) as f:
        start, end = (int(x) for x in f.read().strip().split(","))
    print(f"{ds}: blocks {start}..={end}")
    ti.xcom_push(key="start", value=start)
    ti.xcom_push(key="end", value=end)


def export_blocks_and_transactions(ds, ti, **_):
    start = ti.xcom_pull(task_ids="get_block_range", key="start")
    end = ti.xcom_pull(task_ids="get_block_range", key="end")
    day = _day_dir(ds)
    _ethereumetl(
        "export_blocks_and_transactions",
        "-s", start, "-e", end, "-p", PROVIDER_URI,
        "-b", BATCH_SIZE, "-w", MAX_WORKERS,
        "--blocks-output", os.path.join(day, "blocks.csv"),
        "--transactions-output", os.path.join(day, "transactions.csv"),
    )


def extract_transaction_hashes(ds, **_):
    day = _day_dir(ds)
    _ethereumetl(
        "extract_csv_column", "-c", "hash",
        "-i", os.path.join(day, "transactions.csv"),
        "-o", os.path.join(day, "transaction_hashes.txt"),
    )


def export_receipts_and_logs(ds, **_):
    day = _day_dir(ds)
    _ethereumetl(
        "export_receipts_and_logs",
        "-t", os.path.join(day, "transaction_hashes.txt"), "-p", PROVIDER_URI,
        "-b", BATCH_SIZE, "-w", MAX_WORKERS,
        "--receipts-output", os.path.join(day, "receipts.csv"),
        "--logs-output", os.path.join(day, "logs.csv"),
    )


def extract_token_transfers(ds, **_):
    day = _day_dir(ds)
    _ethereumetl(
        "extract_token_transfers",
        "-l", os.path.join(day, "logs.csv"),
        "-w", MAX_WORKERS,
        "-o", os.path.join(day, "token_transfers.csv"),
    )


default_args = {
    "owner": "ethereum-etl",
    "depends_on_past": False,
    "retries": 5,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=6),
}

with DAG(
    dag_id="ethereum_export_through_nodewatch",
    description="Daily ethereum-etl export (blocks, transactions, receipts, logs, token "
    "transfers) through nodewatch",
    default_args=default_args,
    start_date=datetime(2015, 7, 30),
    schedule="0 1 * * *",  # 01:00 UTC: yesterday's blocks are final by then
    catchup=False,  # True backfills from genesis, as ethereum-etl-airflow does
    max_active_runs=1,
    tags=["ethereum", "etl", "nodewatch"],
) as dag:
    tasks = [
        PythonOperator(task_id=f.__name__, python_callable=f)
        for f in (
            check_nodewatch,
            get_block_range,
            export_blocks_and_transactions,
            extract_transaction_hashes,
            export_receipts_and_logs,
            extract_token_transfers,
        )
    ]
    for upstream, downstream in zip(tasks, tasks[1:]):
        upstream >> downstream
