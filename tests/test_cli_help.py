"""The CLI explains itself: every flag of every subcommand has help text and shows its default;
TensorFlow's start-up chatter never reaches the user."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import fraudstream_cli

ROOT = Path(__file__).resolve().parent.parent


def parsers(parser: argparse.ArgumentParser, path: str = "fraudstream"
            ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


ALL = list(parsers(fraudstream_cli.build_parser()))


def flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]


def test_walk_finds_every_command() -> None:
    names = {path for path, _ in ALL}
    assert {"fraudstream train", "fraudstream replay", "fraudstream alerts list",
            "fraudstream alerts show", "fraudstream models promote",
            "fraudstream labels consume"} <= names


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[p for p, _ in ALL])
def test_every_flag_has_help(path: str, parser: argparse.ArgumentParser) -> None:
    missing = [a.option_strings or a.dest for a in flags(parser) if not (a.help or "").strip()]
    assert not missing, f"{path}: no help text for {missing}"
    for action in parser._actions:  # and every subcommand is described in its parent's list
        if isinstance(action, argparse._SubParsersAction):
            undescribed = [c.dest for c in action._choices_actions if not (c.help or "").strip()]
            assert not undescribed, f"{path}: subcommands without help {undescribed}"


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[p for p, _ in ALL])
def test_defaults_are_shown(path: str, parser: argparse.ArgumentParser) -> None:
    text = " ".join(parser.format_help().split())
    for action in flags(parser):
        if action.default is None or action.default is False or not action.option_strings:
            continue
        shown = f"(default: {action.default})"
        assert shown in text or "default" in (action.help or "").lower(), \
            f"{path} {action.option_strings}: default {action.default!r} not shown"


def test_top_level_help_is_for_users() -> None:
    text = fraudstream_cli.build_parser().format_help()
    assert "dispatcher" not in text
    assert "card-fraud scoring" in text and "make demo" in text
    assert "FRAUDSTREAM_HOME" in text


def test_synth_help_shows_seed_default_zero() -> None:
    parser = dict(ALL)["fraudstream synth"]
    assert "(default: 0)" in " ".join(parser.format_help().split())


def test_stderr_filter_drops_only_the_noise() -> None:
    code = (
        "import os, fraudstream_cli as c\n"
        "with c._filtered_stderr_fd():\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called"
        " are written to STDERR\\n')\n"
        "    os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "    os.write(2, b'a real problem\\n')\n"
        "os.write(2, b'after\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stderr == "a real problem\nafter\n"


def test_importing_tensorflow_through_the_cli_is_quiet() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FRAUDSTREAM_TF_VERBOSE", None)
    done = subprocess.run([sys.executable, "-c", "import fraudstream_cli, tensorflow"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "absl::InitializeLog" not in done.stderr
    assert "oneDNN" not in done.stderr
