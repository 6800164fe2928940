"""Operators that run ethereum-etl's export commands: with ``nodewatch-export`` (the same
commands, flags and byte-identical files, faster) or with ``ethereumetl``.

:class:`NodewatchExportOperator` runs one command (``command`` + ``arguments``) or several in
order (``commands``); every line the program prints goes to the task log as it comes, a
progress line (the size of each output so far) every ``progress_interval`` seconds, and a
failure fails the task with the program's one-line error. Outputs are written under
``<dir>/.<task_id>.tmp/`` and renamed into place when every command has succeeded: a file
that exists is complete, and a failed or retried task leaves nothing half-written.

:class:`NodewatchBlockRangeOperator` runs ``get_block_range_for_date`` and pushes the day's
first and last block to XCom (``start``, ``end``).
"""

from __future__ import annotations

import collections
import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from nodewatch_provider._compat import AirflowException, BaseOperator, Context

EXPORTERS = ("nodewatch-export", "ethereumetl")
#: Seconds between two progress lines of a running command.
DEFAULT_PROGRESS_INTERVAL = 30.0
#: Output lines kept to find the error line of a failed command.
_TAIL_LINES = 50


@functools.cache
def nodewatch_export_has(program: str, command: str) -> bool:
    """Whether ``program`` (a nodewatch-export) has ``command``: ``<command> --help`` exits 0.

    Asked once per program, command and worker process. A program that cannot be run at all
    is a configuration error, not a missing command.
    """
    try:
        done = subprocess.run(
            [program, command, "--help"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
    except OSError as e:
        raise AirflowException(f"cannot run {program}: {e}") from e
    return done.returncode == 0


def error_line(lines: Iterable[str]) -> str:
    """The one line that says why a command failed: nodewatch-export's ``Error: ...`` line (or
    its argument parser's ``error: ...``), else the last line (a Python traceback's exception
    line, for ethereumetl)."""
    kept = [line for line in lines if line.strip()]
    for line in reversed(kept):
        if line.lower().startswith("error: "):
            return line
    return kept[-1] if kept else "(no output)"


class _Staging:
    """Output paths mapped to their temporary twins under ``<dir>/.<task_id>.tmp/``."""

    def __init__(self, outputs: Sequence[str], task_id: str) -> None:
        self.final = [os.path.abspath(p) for p in outputs]
        if len(set(self.final)) != len(self.final):
            raise AirflowException(f"outputs name a file twice: {list(outputs)}")
        self.dirs = sorted(
            {os.path.join(os.path.dirname(p), f".{task_id}.tmp") for p in self.final}
        )
        self.staged = {
            p: os.path.join(os.path.dirname(p), f".{task_id}.tmp", os.path.basename(p))
            for p in self.final
        }
        self.by_arg = {p: self.staged[os.path.abspath(p)] for p in outputs}

    def prepare(self) -> None:
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)

    def rewrite(self, args: Sequence[str]) -> list[str]:
        """``args`` with every output path replaced by its temporary twin."""
        return [self.by_arg.get(a, a) for a in args]

    def sizes(self) -> str:
        parts = []
        for final, staged in self.staged.items():
            size = os.path.getsize(staged) if os.path.exists(staged) else None
            parts.append(f"{os.path.basename(final)} {'-' if size is None else size} B")
        return ", ".join(parts)

    def commit(self) -> None:
        missing = [f for f, s in self.staged.items() if not os.path.isfile(s)]
        if missing:
            raise AirflowException(f"the commands succeeded but did not write {missing}")
        for final, staged in sorted(self.staged.items()):
            os.replace(staged, final)
        self.discard()

    def discard(self) -> None:
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


class NodewatchExportOperator(BaseOperator):
    """Runs ethereum-etl export commands with nodewatch-export or ethereumetl.

    :param command: the command (``export_blocks_and_transactions``, ...). Templated.
    :param arguments: its arguments, as ethereum-etl takes them (``-s``, ``-e``, ``-p``, ...);
        numbers are fine. Templated (block ranges from XCom, the provider URI from the
        sensor, ``{{ ds }}`` in paths).
    :param commands: instead of ``command``/``arguments``: several commands run in order,
        each a list ``[command, *arguments]`` (a later one may read an earlier one's output).
        Templated.
    :param outputs: the files the commands write, as they appear in the arguments. They are
        written to temporary twins and renamed into place once every command has succeeded;
        the task fails if one is missing. Templated.
    :param inputs: files that must exist before anything runs (an earlier task's outputs).
        Templated.
    :param exporter: ``nodewatch-export`` (a command it does not have runs with ethereumetl,
        and the log says so) or ``ethereumetl`` (every command). Templated.
    :param nodewatch_export_bin: the nodewatch-export executable (``pip install nodewatch``
        puts it on PATH).
    :param ethereumetl_bin: the ethereumetl executable.
    :param env: variables added to the commands' environment. Templated.
    :param progress_interval: seconds between two progress lines (0: none).

    Returns (XCom ``return_value``) the output paths.
    """

    template_fields: Sequence[str] = (
        "command",
        "arguments",
        "commands",
        "outputs",
        "inputs",
        "exporter",
        "env",
    )
    ui_color = "#e8f0d8"

    def __init__(
        self,
        *,
        command: str | None = None,
        arguments: Sequence[Any] = (),
        commands: Sequence[Sequence[Any]] | None = None,
        outputs: Sequence[str] = (),
        inputs: Sequence[str] = (),
        exporter: str = "nodewatch-export",
        nodewatch_export_bin: str = "nodewatch-export",
        ethereumetl_bin: str = "ethereumetl",
        env: dict[str, str] | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (command is None) == (commands is None):
            raise ValueError(f"{self.task_id}: give either command (with arguments) or commands")
        self.command = command
        self.arguments = list(arguments)
        self.commands = [list(c) for c in commands] if commands is not None else None
        self.outputs = list(outputs)
        self.inputs = list(inputs)
        self.exporter = exporter
        self.nodewatch_export_bin = nodewatch_export_bin
        self.ethereumetl_bin = ethereumetl_bin
        self.env = dict(env or {})
        self.progress_interval = progress_interval
        self._process: subprocess.Popen[str] | None = None

    def steps(self) -> list[list[str]]:
        """The commands to run, each ``[command, *arguments]`` as strings."""
        steps = self.commands if self.commands is not None else [[self.command, *self.arguments]]
        if not steps or any(not step or not str(step[0]) for step in steps):
            raise AirflowException(f"{self.task_id}: an empty command in {steps!r}")
        return [[str(a) for a in step] for step in steps]

    def program(self, command: str) -> str:
        """The executable that runs ``command`` under the ``exporter`` rule."""
        if self.exporter not in EXPORTERS:
            raise AirflowException(f"exporter={self.exporter!r}: not one of {EXPORTERS}")
        if self.exporter == "nodewatch-export":
            if nodewatch_export_has(self.nodewatch_export_bin, command):
                return self.nodewatch_export_bin
            self.log.info("%s has no %s: ethereumetl runs it", self.nodewatch_export_bin, command)
        return self.ethereumetl_bin

    def execute(self, context: Context) -> list[str]:
        steps = self.steps()
        missing = [p for p in self.inputs if not os.path.isfile(p)]
        if missing:
            raise AirflowException(f"{missing}: not there (the task that writes them has not run)")
        staging = _Staging(self.outputs, self.task_id)
        staging.prepare()
        try:
            for command, *args in steps:
                argv = [self.program(command), command, *staging.rewrite(args)]
                self.log.info("running (%s chosen): %s", self.exporter, " ".join(argv))
                self._run(argv, staging)
            staging.commit()
        except BaseException:
            staging.discard()
            raise
        return [os.path.abspath(p) for p in self.outputs]

    def _run(self, argv: list[str], staging: _Staging) -> None:
        """Runs one command, its output lines into the task log; raises with its error line."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in self.env.items()}}
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as e:
            raise AirflowException(f"cannot run {argv[0]}: {e}") from e
        self._process = process
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        output = process.stdout  # a pipe (stdout=PIPE above)

        def pump() -> None:
            for line in output or ():
                line = line.rstrip("\n")
                tail.append(line)
                self.log.info("%s", line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        waited = 0.0
        while True:
            try:
                code = process.wait(timeout=self.progress_interval or None)
                break
            except subprocess.TimeoutExpired:
                waited += self.progress_interval
                self.log.info("%s still running after %.0f s: %s", argv[1], waited, staging.sizes())
        reader.join()
        self._process = None
        if code != 0:
            raise AirflowException(f"{argv[1]} failed (exit {code}): {error_line(tail)}")

    def on_kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()


class NodewatchBlockRangeOperator(NodewatchExportOperator):
    """``get_block_range_for_date``: the first and last block of ``date`` (UTC) into
    ``output_file`` (``<first>,<last>``) and XCom ``start``/``end`` (also the return value, as
    ``{"start": ..., "end": ...}``).

    :param date: ``YYYY-MM-DD``. Templated (``{{ ds }}``).
    :param provider_uri: the JSON-RPC URL. Templated (the sensor's XCom).
    :param output_file: where the range goes, e.g. ``.../<ds>/block_range.txt``. Templated.
    """

    template_fields: Sequence[str] = (
        *NodewatchExportOperator.template_fields,
        "date",
        "provider_uri",
        "output_file",
    )

    def __init__(self, *, date: str, provider_uri: str, output_file: str, **kwargs: Any) -> None:
        super().__init__(command="get_block_range_for_date", **kwargs)
        self.date = date
        self.provider_uri = provider_uri
        self.output_file = output_file

    def execute(self, context: Context) -> dict[str, int]:  # type: ignore[override]
        self.arguments = ["-p", self.provider_uri, "-d", self.date, "-o", self.output_file]
        self.outputs = [self.output_file]
        super().execute(context)
        with open(self.output_file) as f:
            text = f.read().strip()
        try:
            start, end = (int(x) for x in text.split(","))
        except ValueError as e:
            raise AirflowException(f"{self.output_file}: not <first>,<last>: {text!r}") from e
        self.log.info("%s: blocks %d..=%d", self.date, start, end)
        ti = context["ti"]
        ti.xcom_push(key="start", value=start)
        ti.xcom_push(key="end", value=end)
        return {"start": start, "end": end}
