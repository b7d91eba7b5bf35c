"""The model registry: artifacts on disk under ``$FRAUDSTREAM_HOME/models/<version>/``, one row
per version in ``model_versions``, and hash checks on every load.

Every artifact's sha256 is listed in ``manifest.json``; the manifest's own sha256 is in the
database row, so neither a changed artifact nor a rewritten manifest goes unnoticed.
The manifest and the row name the model ``family`` (:mod:`models`); the scorer loads that
family's framework-free scoring form, so a family swapped on disk is refused like any change.
Stages: the first model is ``production``, later ones ``candidate`` until promoted; the
production model it replaces becomes ``archived``.

Promotion is a recorded decision: every promotion (by the retraining gate or a person) and every
candidate the gate turned down or held back is a row of ``promotions`` (:class:`PromotionRecord`:
what was compared with what, on which event-time window, with which numbers and rule, by whom).
A model's ``training`` records where its training data came from (source, window, label counts).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from schemas.errors import FraudstreamError
from store.settings import home as default_home
from store.tables import model_versions, promotions

MANIFEST = "manifest.json"


class ArtifactIntegrityError(FraudstreamError):
    """A registered artifact is missing or its hash does not match the manifest."""


@dataclass(frozen=True)
class ModelRecord:
    version: int
    created_at: datetime
    strategy: str
    threshold: float
    threshold_policy: str
    metrics: dict[str, Any]
    artifact_dir: str  # relative to FRAUDSTREAM_HOME
    manifest_sha256: str
    data_sha256: str
    stage: str
    family: str = "dense"
    training: dict[str, Any] | None = None  # source, event-time window, label counts (0004)

    def path(self, home: Path | None = None) -> Path:
        return (home or default_home()) / self.artifact_dir

    def summary(self) -> dict[str, Any]:
        return {"version": self.version, "stage": self.stage, "family": self.family,
                "strategy": self.strategy,
                "threshold": self.threshold, "threshold_policy": self.threshold_policy,
                "created_at": self.created_at.isoformat(), "artifact_dir": self.artifact_dir}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(row: Any) -> ModelRecord:
    return ModelRecord(**{k: row._mapping[k] for k in ModelRecord.__dataclass_fields__})


def register(engine: Engine, staging: Path, *, strategy: str, threshold: float,
             threshold_policy: str, metrics: dict[str, Any], data_sha256: str,
             home: Path | None = None, family: str = "dense",
             training: dict[str, Any] | None = None,
             feature_ranges: dict[str, Any] | None = None,
             manifest_extra: dict[str, Any] | None = None) -> ModelRecord:
    """Move the files in ``staging`` to ``models/<next version>/`` with a manifest; add the row.

    ``family`` names the model family whose scoring form the files hold (``models.FAMILIES``);
    ``training`` is the training data's provenance (JSON-ready; stored as is);
    ``feature_ranges`` the raw features' training-set ranges (``feature_ranges.json`` among the
    hashed files; copied into the row for the desk, as ``metrics`` is);
    ``manifest_extra``: more manifest entries (a keyed model's input kind and spec hash).
    """
    from models import FAMILIES

    if family not in FAMILIES:
        raise FraudstreamError(f"unknown model family {family!r}; use one of "
                               f"{', '.join(FAMILIES)}")
    home = home or default_home()
    files = sorted(p for p in staging.iterdir() if p.is_file() and p.name != MANIFEST)
    manifest = {**(manifest_extra or {}), "files": {p.name: sha256_file(p) for p in files},
                "data_sha256": data_sha256, "family": family}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    manifest_sha = sha256_file(staging / MANIFEST)
    for _ in range(5):  # another trainer may take the same version number concurrently
        with engine.begin() as conn:
            latest = conn.execute(select(func.max(model_versions.c.version))).scalar()
            version = int(latest or 0) + 1
            has_production = conn.execute(
                select(model_versions.c.version).where(model_versions.c.stage == "production")
            ).first()
        target = home / "models" / str(version)
        if target.exists():
            shutil.rmtree(target)  # a leftover of a registration that never got its row
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, target)
        row = {"version": version, "created_at": datetime.now(UTC), "strategy": strategy,
               "threshold": float(threshold), "threshold_policy": threshold_policy,
               "metrics": metrics, "artifact_dir": f"models/{version}",
               "manifest_sha256": manifest_sha, "data_sha256": data_sha256,
               "stage": "candidate" if has_production else "production", "family": family,
               "training": training, "feature_ranges": feature_ranges}
        try:
            with engine.begin() as conn:
                conn.execute(model_versions.insert().values(**row))
        except IntegrityError:
            continue
        return get(engine, version)
    raise FraudstreamError("could not allocate a model version after 5 attempts")


def get(engine: Engine, version: int | str = "production") -> ModelRecord:
    """The record of ``version`` (a number, or ``"production"``)."""
    query = select(model_versions)
    if str(version) == "production":
        query = query.where(model_versions.c.stage == "production")
    else:
        try:
            query = query.where(model_versions.c.version == int(version))
        except ValueError as exc:
            raise FraudstreamError(f"model version must be a number or 'production', "
                                   f"not {version!r}") from exc
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        what = "no production model is registered (run `fraudstream train` first)" \
            if str(version) == "production" else f"model version {version} is not registered"
        raise FraudstreamError(what)
    return _record(row)


def production_version(conn: Connection, *, lock: bool = False) -> int | None:
    """The production version number (one indexed row; None when none is production).

    ``lock``: also take a share lock on that row until the caller's transaction ends, so a
    promotion (which updates it) waits for the transaction — and a transaction that reads it
    after a promotion committed sees the new production (PostgreSQL; SQLite serialises writing
    transactions anyway). The scorer's commits use it as a fence (:mod:`scorer.sink`)."""
    query = select(model_versions.c.version).where(model_versions.c.stage == "production")
    return conn.execute(query.with_for_update(read=True) if lock else query).scalar()


def list_versions(engine: Engine) -> list[ModelRecord]:
    with engine.connect() as conn:
        rows = conn.execute(select(model_versions).order_by(model_versions.c.version)).all()
    return [_record(r) for r in rows]


#: Outcomes of a promotion decision: made production; failed the gate's rule; passed it but not
#: made production (``--promote never``, or another candidate of the round won).
OUTCOMES = ("promoted", "rejected", "held")


@dataclass(frozen=True)
class PromotionRecord:
    """One promotion decision (a ``promotions`` row). ``decided_by`` is ``gate`` or
    ``person:<name>``; ``window_start``/``window_end`` bound the event times of the labelled
    slice compared; ``comparison`` holds the figures of both models and the rule's checks."""

    id: int
    version: int
    previous_version: int | None
    outcome: str
    decided_by: str
    decided_at: datetime
    rule: str | None
    window_start: datetime | None
    window_end: datetime | None
    comparison: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items()}

    def line(self) -> str:
        """One line for people: ``promoted by gate 2026-11-28 13:02 (was v1)``."""
        was = f" (production was v{self.previous_version})" if self.previous_version else ""
        why = (self.comparison or {}).get("summary")
        return (f"{self.outcome} by {self.decided_by} {self.decided_at:%Y-%m-%d %H:%M}{was}"
                + (f": {why}" if why else ""))

    def lines(self) -> list[str]:
        """What ``models show`` prints of it: the line, the rule, the slice and its figures (the
        gate's verdict, or the live ``models compare`` evidence a person promoted on)."""
        out = [f"last decision: {self.line()}"]
        if self.rule:
            out.append(f"  rule: {self.rule}")
        comparison = self.comparison or {}
        span = "" if self.window_start is None or self.window_end is None else (
            f" on events {self.window_start:%Y-%m-%d %H:%M} .. {self.window_end:%Y-%m-%d %H:%M}")
        if comparison.get("reason"):
            out.append(f"  gate{span}: {comparison['reason']}")
        gain = comparison.get("auprc_gain_interval")
        if gain:
            out.append(f"  AUPRC gain {gain['gain']:+.4f}, {gain['confidence']:.0%} bootstrap "
                       f"interval {gain['lower']:+.4f} .. {gain['upper']:+.4f} "
                       f"({gain['resamples']} resamples, seed {gain['seed']})")
        labels = comparison.get("provenance")
        if labels:
            out.append(f"  labels of the slice ({comparison.get('frauds', 0):,} frauds): "
                       + labels["line"])
        out += [f"  warning: {w}" for w in comparison.get("warnings") or []]
        live = comparison.get("live")
        if live:
            figures = ", ".join(
                f"v{v} auprc {m['auprc']:.4f} recall {m['recall'] or 0:.4f}" if m["auprc"]
                is not None else f"v{v} recall {m['recall'] or 0:.4f}"
                for v, m in live["models"].items())
            window = live.get("mature_after_s")
            matured = ("" if window is None else
                       f", matured after {window / 3600:g}h" if window % 3600 == 0 else
                       f", matured after {window:g}s")
            out.append(f"  live evidence{span}: {live['matured']:,} matured transactions "
                       f"({live['frauds']:,} frauds{matured}): {figures}")
        return out


Window = tuple[datetime, datetime] | None


def _insert_promotion(conn: Connection, version: int, previous: int | None, outcome: str,
                      decided_by: str, rule: str | None, window: Window,
                      comparison: dict[str, Any] | None) -> None:
    if outcome not in OUTCOMES:
        raise FraudstreamError(f"promotion outcome must be one of {', '.join(OUTCOMES)}, "
                               f"not {outcome!r}")
    if not (decided_by == "gate" or (decided_by.startswith("person:") and len(decided_by) > 7)):
        raise FraudstreamError(f"decided_by must be 'gate' or 'person:<name>', not "
                               f"{decided_by!r}")
    conn.execute(promotions.insert().values(
        version=version, previous_version=previous, outcome=outcome, decided_by=decided_by,
        decided_at=datetime.now(UTC), rule=rule,
        window_start=window[0] if window else None, window_end=window[1] if window else None,
        comparison=comparison))


def promote(engine: Engine, version: int, *, decided_by: str = "person:unknown",
            rule: str | None = None, window: Window = None,
            comparison: dict[str, Any] | None = None, home: Path | None = None) -> ModelRecord:
    """Make ``version`` the production model; the previous production model is archived. The
    decision is recorded in ``promotions`` in the same database transaction (nothing is recorded
    when ``version`` is production already).

    Every artifact is verified against its hash first (:func:`verify`): a model no scorer would
    load is never made production (:class:`ArtifactIntegrityError`, nothing changes)."""
    target = get(engine, version)
    try:
        verify(target, home)
    except ArtifactIntegrityError as exc:
        raise ArtifactIntegrityError(f"not promoted, production is unchanged: {exc}") from exc
    with engine.begin() as conn:
        previous = conn.execute(select(model_versions.c.version)
                                .where(model_versions.c.stage == "production")).scalar()
        if previous != target.version:
            conn.execute(update(model_versions).where(model_versions.c.stage == "production")
                         .values(stage="archived"))
            conn.execute(update(model_versions).where(model_versions.c.version == target.version)
                         .values(stage="production"))
            _insert_promotion(conn, target.version, previous, "promoted", decided_by, rule,
                              window, comparison)
    return get(engine, version)


def record_decision(engine: Engine, version: int, outcome: str, *, decided_by: str,
                    previous_version: int | None, rule: str | None = None,
                    window: Window = None, comparison: dict[str, Any] | None = None) -> None:
    """Record a decision that changes no stage: ``rejected`` or ``held`` (or ``promoted`` for a
    model that became production on registration, the first one)."""
    get(engine, version)  # registered?
    with engine.begin() as conn:
        _insert_promotion(conn, version, previous_version, outcome, decided_by, rule, window,
                          comparison)


def promotion_history(engine: Engine, version: int | None = None) -> list[PromotionRecord]:
    """Recorded decisions, oldest first (only those about ``version`` when given)."""
    query = select(promotions).order_by(promotions.c.id)
    if version is not None:
        query = query.where(promotions.c.version == version)
    with engine.connect() as conn:
        return [PromotionRecord(**dict(r._mapping)) for r in conn.execute(query)]


def latest_promotions(engine: Engine) -> dict[int, PromotionRecord]:
    """The latest recorded decision about each version that has one."""
    return {r.version: r for r in promotion_history(engine)}


def manifest_of(record: ModelRecord, home: Path | None = None) -> dict[str, Any]:
    """The manifest of ``record``, after :func:`verify` (every hash checked)."""
    return dict(json.loads((verify(record, home) / MANIFEST).read_text()))


def verify(record: ModelRecord, home: Path | None = None) -> Path:
    """Check the manifest and every artifact against their hashes; return the artifact dir."""
    directory = record.path(home)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactIntegrityError(f"model {record.version}: {manifest_path} is missing")
    if sha256_file(manifest_path) != record.manifest_sha256:
        raise ArtifactIntegrityError(
            f"model {record.version}: manifest hash does not match the registry")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("family", "dense") != record.family:
        raise ArtifactIntegrityError(
            f"model {record.version}: manifest family {manifest.get('family', 'dense')!r} does "
            f"not match the registry's {record.family!r}")
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"model {record.version}: artifact {name} is missing")
        if sha256_file(path) != expected:
            raise ArtifactIntegrityError(
                f"model {record.version}: artifact {name} hash mismatch (sha256 {expected[:12]}… "
                "expected): the file was changed after registration")
    return directory
