"""NodewatchExportOperator and NodewatchBlockRangeOperator against an anvil node, through a
real nodewatch, their files compared with the same command run directly."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Anvil, Nodewatch, Start, free_port, rpc, xcoms
from nodewatch_provider._compat import AirflowException, Context
from nodewatch_provider.operators.export import (
    NodewatchBlockRangeOperator,
    NodewatchExportOperator,
    error_line,
)

TaskLog = Callable[[], list[str]]


@pytest.fixture
def task_log(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> TaskLog:
    """``task_log()``: the lines the operators logged so far. Airflow 2.10's task logger is a
    ``logging`` logger (caplog); Airflow 3's prints through structlog (captured output)."""
    caplog.set_level(logging.INFO)
    seen: list[str] = []

    def lines() -> list[str]:
        out = capsys.readouterr()
        seen.extend(out.out.splitlines() + out.err.splitlines())
        return seen + [r.getMessage() for r in caplog.records]

    return lines


def direct(program: str, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([program, command, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def blocks_args(url: str, end: int, out: str) -> list[Any]:
    return [
        "-s",
        0,
        "-e",
        end,
        "-p",
        url,
        "-b",
        5,
        "-w",
        1,
        "--blocks-output",
        os.path.join(out, "blocks.csv"),
        "--transactions-output",
        os.path.join(out, "transactions.csv"),
    ]


def read(path: str | Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_export_through_nodewatch_equals_a_direct_export(
    start: Start,
    node: Anvil,
    nodewatch_bin: str,
    exporter_bin: str,
    ethereumetl_bin: str,
    tmp_path: Path,
    context: Context,
    task_log: TaskLog,
) -> None:
    nw = start(Nodewatch, nodewatch_bin, [node.url])
    head = int(rpc(node.url, "eth_blockNumber"), 16)
    want = tmp_path / "want"
    want.mkdir()
    direct(
        exporter_bin,
        "export_blocks_and_transactions",
        *map(str, blocks_args(node.url, head, str(want))),
    )
    for exporter in ("nodewatch-export", "ethereumetl"):
        out = tmp_path / exporter
        op = NodewatchExportOperator(
            task_id=f"blocks_{exporter.replace('-', '_')}",
            command="export_blocks_and_transactions",
            arguments=blocks_args(nw.url, head, str(out)),
            outputs=[str(out / "blocks.csv"), str(out / "transactions.csv")],
            exporter=exporter,
            nodewatch_export_bin=exporter_bin,
            ethereumetl_bin=ethereumetl_bin,
            progress_interval=0.2,
        )
        result = op.execute(context)
        assert result == [str(out / "blocks.csv"), str(out / "transactions.csv")]
        for name in ("blocks.csv", "transactions.csv"):
            assert read(out / name) == read(want / name), f"{exporter}: {name}"
        assert read(want / "blocks.csv").count(b"\n") == head + 2  # header + blocks 0..=head
        assert sorted(os.listdir(out)) == ["blocks.csv", "transactions.csv"], "no temporary left"
        program = exporter_bin if exporter == "nodewatch-export" else ethereumetl_bin
        lines = task_log()
        assert any(
            f"running ({exporter} chosen): {program} export_blocks_and_transactions " in line
            for line in lines
        ), lines
    # ethereumetl's own progress lines reach the task log, and so do the operator's (Python
    # takes longer to start than the 0.2 s between two).
    lines = task_log()
    assert any("export_blocks_and_transactions still running after" in line for line in lines)
    assert any("[INFO]" in line for line in lines), lines


def test_a_failing_command_fails_the_task_with_its_one_line_error(
    node: Anvil, exporter_bin: str, tmp_path: Path, context: Context
) -> None:
    out = tmp_path / "out"
    op = NodewatchExportOperator(
        task_id="blocks",
        command="export_blocks_and_transactions",
        arguments=["-s", 5, "-e", 2, "-p", node.url, "--blocks-output", str(out / "blocks.csv")],
        outputs=[str(out / "blocks.csv")],
        nodewatch_export_bin=exporter_bin,
    )
    with pytest.raises(AirflowException) as failed:
        op.execute(context)
    message = str(failed.value)
    assert message.startswith("export_blocks_and_transactions failed (exit 2): Error: ")
    assert "\n" not in message
    assert os.listdir(out) == [], "nothing half-written, no temporary directory left"


def test_commands_run_in_order_and_outputs_appear_only_when_all_succeed(
    node: Anvil, exporter_bin: str, tmp_path: Path, context: Context
) -> None:
    head = int(rpc(node.url, "eth_blockNumber"), 16)
    out = tmp_path / "out"
    txs, hashes = str(out / "transactions.csv"), str(out / "hashes.txt")
    blocks = NodewatchExportOperator(
        task_id="blocks",
        command="export_blocks_and_transactions",
        arguments=["-s", 0, "-e", head, "-p", node.url, "--transactions-output", txs],
        outputs=[txs],
        nodewatch_export_bin=exporter_bin,
    )
    blocks.execute(context)
    receipts = str(out / "receipts.csv")
    two = NodewatchExportOperator(
        task_id="receipts",
        commands=[
            ["extract_csv_column", "-c", "hash", "-i", txs, "-o", hashes],
            [
                "export_receipts_and_logs",
                "-t",
                hashes,
                "-p",
                node.url,
                "--receipts-output",
                receipts,
            ],
        ],
        inputs=[txs],
        outputs=[hashes, receipts],
        nodewatch_export_bin=exporter_bin,
    )
    two.execute(context)
    assert read(hashes).count(b"\n") == head  # one transfer per block 1..=head
    assert read(receipts).count(b"\n") == head + 1
    # The second command failing leaves neither output.
    os.remove(hashes)
    os.remove(receipts)
    broken = NodewatchExportOperator(
        task_id="receipts",
        commands=[
            ["extract_csv_column", "-c", "hash", "-i", txs, "-o", hashes],
            [
                "export_receipts_and_logs",
                "-t",
                hashes,
                "-p",
                node.url,
                "-b",
                0,
                "--receipts-output",
                receipts,
            ],
        ],
        inputs=[txs],
        outputs=[hashes, receipts],
        nodewatch_export_bin=exporter_bin,
    )
    with pytest.raises(
        AirflowException,
        match=r"export_receipts_and_logs failed \(exit 2\): error: invalid value '0'",
    ):
        broken.execute(context)
    assert sorted(os.listdir(out)) == ["transactions.csv"]
    # A missing input fails before anything runs.
    missing = NodewatchExportOperator(
        task_id="x",
        command="extract_token_transfers",
        arguments=["-l", str(out / "logs.csv"), "-o", str(out / "tt.csv")],
        inputs=[str(out / "logs.csv")],
        outputs=[str(out / "tt.csv")],
        nodewatch_export_bin=exporter_bin,
    )
    with pytest.raises(AirflowException, match=r"logs\.csv.*not there"):
        missing.execute(context)


def test_block_range_operator_pushes_start_and_end(
    start: Start, anvil_bin: str, exporter_bin: str, tmp_path: Path, context: Context
) -> None:
    # Blocks 12 hours apart from 2023-11-14T00:00:00Z: 2023-11-15 holds blocks 2 and 3.
    anvil = start(Anvil, anvil_bin, free_port(), "--timestamp", "1699920000")
    for i in range(1, 7):
        rpc(anvil.url, "evm_mine", [{"timestamp": 1699920000 + i * 43200}])
    output = str(tmp_path / "2023-11-15" / "block_range.txt")
    op = NodewatchBlockRangeOperator(
        task_id="get_block_range_for_date",
        date="2023-11-15",
        provider_uri=anvil.url,
        output_file=output,
        nodewatch_export_bin=exporter_bin,
    )
    assert op.execute(context) == {"start": 2, "end": 3}
    assert xcoms(context) == {"start": 2, "end": 3}
    assert read(output).strip() == b"2,3"


def test_unknown_exporter_and_unrunnable_program_are_clear_errors(
    tmp_path: Path, context: Context
) -> None:
    op = NodewatchExportOperator(
        task_id="x", command="get_keccak_hash", arguments=["-i", "Transfer"], exporter="geth"
    )
    with pytest.raises(AirflowException, match="exporter='geth': not one of"):
        op.execute(context)
    op = NodewatchExportOperator(
        task_id="y",
        command="get_keccak_hash",
        arguments=["-i", "x"],
        nodewatch_export_bin=str(tmp_path / "missing"),
    )
    with pytest.raises(AirflowException, match=r"cannot run .*missing"):
        op.execute(context)
    with pytest.raises(ValueError, match="either command"):
        NodewatchExportOperator(task_id="z")


def test_error_line_prefers_the_exporters_error_line() -> None:
    assert error_line(["progress", "Error: -s 5 is after -e 2", ""]) == "Error: -s 5 is after -e 2"
    assert (
        error_line(["Traceback (most recent call last):", "  File x", "ValueError: bad"])
        == "ValueError: bad"
    )
    assert (
        error_line(
            [
                "error: invalid value '0' for '--batch-size'",
                "",
                "For more information, try '--help'.",
            ]
        )
        == "error: invalid value '0' for '--batch-size'"
    )
    assert error_line([]) == "(no output)"
