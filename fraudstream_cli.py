"""fraudstream: card-fraud scoring over Apache Kafka.

Train a fraud model on creditcard.csv-shaped data, replay transactions onto Kafka, score them in
a consumer group, record delayed labels (chargebacks), and look at honest counts and alerts.
A first run: `make demo`; then `fraudstream COMMAND --help` for any command below.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import select
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

# TensorFlow's start-up chatter, silenced before anything imports it. TF_CPP_MIN_LOG_LEVEL covers
# TensorFlow's own C++ logging; the absl "All log messages before absl::InitializeLog()" line and
# the oneDNN notice are written straight to file descriptor 2 while the native libraries load, and
# no environment variable silences them (TF 2.21: GLOG_minloglevel / ABSL_MIN_LOG_LEVEL do not)
# short of TF_ENABLE_ONEDNN_OPTS=0, which would change the numerics. So the first
# `import tensorflow` runs with fd 2 captured, and every captured line but those is passed on.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
TF_NOISE: tuple[str, ...] = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
)


@contextlib.contextmanager
def _filtered_stderr_fd(noise: Sequence[str] = TF_NOISE) -> Iterator[None]:
    """Capture file descriptor 2 for the block; afterwards write back every line that contains
    none of ``noise`` (real warnings and errors still reach the user)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(True)
                    if not any(n in line for n in noise)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with _filtered_stderr_fd():
            self.inner.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Wraps the first import of ``tensorflow`` in :func:`_filtered_stderr_fd` (only commands
    that need TensorFlow pay for importing it)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


if "tensorflow" not in sys.modules and os.environ.get("FRAUDSTREAM_TF_VERBOSE") != "1":
    sys.meta_path.insert(0, _QuietTensorFlowImport())

from desk import cli as desk_cli  # noqa: E402
from labels import cli as labels_cli  # noqa: E402
from metrics import logs  # noqa: E402
from producer import cli as producer_cli  # noqa: E402
from schemas.errors import FraudstreamError  # noqa: E402
from scorer import cli as scorer_cli  # noqa: E402
from store import cli as store_cli  # noqa: E402
from trainer import cli as trainer_cli  # noqa: E402


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after a flag's help unless there is no meaningful default (None,
    False) or the help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.default is False \
                or action.default == argparse.SUPPRESS or "default" in text.lower():
            return text
        return super()._get_help_string(action)


#: Help for flags registered without one by modules this file does not own
#: ({subcommand: {dest: help}}); used only where the flag itself has no help text.


def _polish(parser: argparse.ArgumentParser, command: str | None = None) -> None:
    """Every parser (and subparser) gets :class:`HelpFormatter`."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _polish(child, command or name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudstream", description=__doc__, formatter_class=HelpFormatter,
        epilog="Configuration: flags > environment (FRAUDSTREAM_HOME, FRAUDSTREAM_DB_URL, "
               "KAFKA_BOOTSTRAP_SERVERS) > defaults (./.fraudstream, SQLite in it, the "
               "broker `kafka up` started for the home, else 127.0.0.1:9092). After `make "
               "demo`: export FRAUDSTREAM_HOME=.fraudstream/demo.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging (also Kafka's and Alembic's)")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=logs.default_format(),
                        help="log lines as text, or one JSON object per line for a log "
                             "shipper (default: $FRAUDSTREAM_LOG_FORMAT, else text)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for component in (trainer_cli, producer_cli, scorer_cli, labels_cli, store_cli, desk_cli):
        component.register(sub)
    _polish(parser)
    return parser


#: The exit status of a Unix tool whose reader went away (killed by SIGPIPE: 128 + 13).
EXIT_BROKEN_PIPE = 141


def stdout_reader_gone() -> bool:
    """True if standard output is a pipe nobody reads any more (poll reports an error on it), so
    a BrokenPipeError came from there and not from a socket."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def reader_gone() -> int:
    """Standard output's reader went away (``fraudstream alerts list | head -3``): stop quietly,
    as Unix tools do — no traceback, and nothing more is written (stdout now goes to /dev/null,
    so the interpreter's own flush at exit cannot fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(verbose=args.verbose, fmt=args.log_format)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        if not stdout_reader_gone():
            raise
        return reader_gone()
    except FraudstreamError as exc:
        if args.log_format == "json":
            logging.getLogger(f"fraudstream.{args.command}").error(
                str(exc), extra={"error": type(exc).__name__, "exit_code": exc.exit_code})
        else:
            print(f"fraudstream {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
