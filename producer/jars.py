"""The local broker's files: the Kafka version pinned in ``deploy/kafka/pom.xml``, the deploy
files rendered for a broker, and its jars, resolved once with Maven into
``${XDG_CACHE_HOME:-~/.cache}/fraudstream/kafka-<version>/libs`` (atomically: concurrent
resolvers leave one complete copy)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from schemas.errors import FraudstreamError

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "kafka"
_COMPLETE_MARKER = ".complete"


def kafka_version() -> str:
    """The Kafka version pinned in ``deploy/kafka/pom.xml``."""
    pom = deploy_file("pom.xml").read_text()
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    if not match:
        raise FraudstreamError(f"no <kafka.version> in {DEPLOY_DIR / 'pom.xml'}")
    return match.group(1).strip()


def deploy_file(name: str) -> Path:
    path = DEPLOY_DIR / name
    if not path.is_file():
        raise FraudstreamError(f"{path} is missing: run the local broker from a source checkout")
    return path


def require_tool(tool: str, why: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise FraudstreamError(f"'{tool}' not found on PATH: {why}")
    return found


def jar_dir() -> Path:
    """Directory of the broker's jars, resolved with Maven on first use (atomically)."""
    version = kafka_version()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = cache / "fraudstream" / f"kafka-{version}"
    libs = base / "libs"
    if (libs / _COMPLETE_MARKER).is_file():
        return libs
    mvn = require_tool("mvn", "Maven is needed once to download the Kafka broker jars")
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=base))
    print(f"resolving Apache Kafka {version} jars with Maven into {libs} ...", file=sys.stderr)
    cmd = [mvn, "-q", "-B", "-f", str(deploy_file("pom.xml")), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={staging}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        tail = (result.stdout + result.stderr).strip().splitlines()[-10:]
        raise FraudstreamError("Maven could not resolve the Kafka jars: " + " | ".join(tail))
    (staging / _COMPLETE_MARKER).write_text(version + "\n")
    try:
        if libs.exists():  # an incomplete earlier attempt
            shutil.rmtree(libs)
        staging.rename(libs)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # a concurrent resolver won the race
        if not (libs / _COMPLETE_MARKER).is_file():
            raise
    return libs
