"""Shadow scoring: which model scores every batch beside production (``score --shadow``).

A shadow's decisions go to ``decisions`` under its own version — the live evidence that
``models compare`` and the gate read — and it never alerts: no alert rows, no alert events.
"""

from __future__ import annotations

from sqlalchemy import Engine

from schemas.errors import FraudstreamError
from store import registry


def shadow_version(engine: Engine, spec: str, scoring: int) -> int:
    """The version ``spec`` names: a number, or ``candidate`` (the newest candidate). It must be
    registered and differ from ``scoring``, the version that scores for real."""
    if spec == "candidate":
        candidates = [r.version for r in registry.list_versions(engine) if r.stage == "candidate"]
        if not candidates:
            raise FraudstreamError("--shadow candidate: no candidate model is registered")
        version = max(candidates)
    else:
        try:
            version = int(spec)
        except ValueError as exc:
            raise FraudstreamError(f"--shadow must be 'candidate' or a version number, not "
                                   f"{spec!r}") from exc
        registry.get(engine, version)  # registered?
    if version == scoring:
        raise FraudstreamError(f"--shadow {spec}: model {version} is the model scoring already")
    return version
