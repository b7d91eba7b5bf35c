"""Structure of the Dockerfile and .dockerignore (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

from tests.compose_file import DOCKERFILE, DOCKERIGNORE, ROOT, compose, environment, volume_mounts

# --------------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def copy_sources() -> list[str]:
    sources = []
    for word, rest in dockerfile_instructions():
        if word in ("COPY", "ADD"):
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def test_dockerfile_base_install_user_and_entrypoint() -> None:
    instructions = dockerfile_instructions()
    assert [rest for word, rest in instructions if word == "FROM"] == ["${BASE_IMAGE}"]
    args = [rest for word, rest in instructions if word == "ARG"]
    assert "BASE_IMAGE=python:3.11-slim" in args and "PIP_OFFLINE=" in args
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "pip install" in runs and "'.[postgres]'" in runs and "dev" not in runs
    assert "${PIP_OFFLINE:+--no-index" in runs  # offline only when asked
    # nothing that needs BuildKit or a registry beyond the base image
    text = DOCKERFILE.read_text()
    assert "# syntax=" not in text and "--mount=" not in text
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    entry = [rest for word, rest in instructions if word == "ENTRYPOINT"]
    assert [json.loads(e) for e in entry] == [["fraudstream"]]
    # the image's FRAUDSTREAM_HOME and the mount points exist and belong to the user
    home = environment(compose()["services"]["scorer"])["FRAUDSTREAM_HOME"]
    data_dir = volume_mounts(compose()["services"]["trainer"])["data"]
    assert f"FRAUDSTREAM_HOME={home}" in " ".join(r for w, r in instructions if w == "ENV")
    chown = next(r for w, r in instructions if w == "RUN" and "chown" in r)
    assert home in chown and data_dir in chown


def test_dockerfile_copies_only_the_package() -> None:
    sources = copy_sources()
    for src in sources:
        assert src not in (".", "./", "*") and not src.startswith(".env"), src
        assert not re.search(r"secret|credential|password|\.pem$|\.key$|id_rsa", src, re.I), src
        if not any(c in src for c in "*?["):
            assert (ROOT / src).exists(), f"COPY source missing: {src}"
    copied = {s.rstrip("/") for s in sources}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:  # e.g. "trainer*": the package directory must be copied
        assert pattern.rstrip("*") in copied, pattern
    for module in project["tool"]["setuptools"]["py-modules"]:
        assert f"{module}.py" in copied
    assert "pyproject.toml" in copied


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".fraudstream", "tests", "*.csv", "**/*.csv", ".env"} <= patterns
    assert not any(p.startswith("!") for p in patterns)
