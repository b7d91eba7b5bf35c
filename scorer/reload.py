"""Hot reload: a scorer started on ``production`` follows the registry's production stage.

Every ``interval`` seconds, at a batch boundary (the consumer calls the pipeline's
``before_batch`` between batches, never inside one), the scorer reads which version is
production — one indexed row — and, when it differs from the model in use, loads it through
:func:`scorer.model.load_model` (every artifact hash-verified) and switches. Promoting an older
version back is a rollback and is picked up the same way. A failed read or load keeps the
current model and logs an error: the scorer never crashes over a reload and never scores with
an unverified model. A version that failed to load is not retried until production changes
again (no error every few seconds; promote again, or restart, after fixing it).

In the production group (:class:`ProductionFence`) one model scores at a time: the production
version is read at every batch boundary; a member on another version switches to it before
scoring the batch, or — hot reload off, or production cannot be loaded — stops with one line.
Each batch's commit is fenced as well (:func:`scorer.sink.write_batch`), so a promotion racing
a batch drops that batch uncommitted and it is scored again by the new production model.

The core (:class:`ReloadClock`, :func:`version_to_load`) is pure; the registry read and the
loading are edges passed in, so tests can drive the decision without a database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from schemas.errors import FraudstreamError
from scorer.process import ScoringModel
from store import registry

log = logging.getLogger(__name__)

#: The production scoring group: only the production model scores in it, one version at a time.
PRODUCTION_GROUP = "fraudstream-scorer"
#: Default seconds between two reads of the production version (``--reload-check``).
DEFAULT_CHECK_S = 5.0


@dataclass
class ReloadClock:
    """Whether a check is due: the first call is, then one every ``interval`` seconds."""

    interval: float
    last: float | None = None

    def due(self, now: float) -> bool:
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True


def version_to_load(current: int, production: int | None, failed: int | None) -> int | None:
    """The version to switch to, or None: production when it differs from the model in use and
    has not already failed to load (``None`` production: none registered — keep scoring)."""
    if production is None or production == current or production == failed:
        return None
    return production


def production_version(engine: Engine) -> int | None:
    """The production version number (one indexed row), None when no model is production."""
    with engine.connect() as conn:
        return registry.production_version(conn)


@dataclass
class ModelReloader:
    """Checks the registry every ``interval`` seconds and loads a newly promoted model.

    ``read_production`` and ``load`` are the edges (the registry read; a hash-verifying load);
    ``on_switch`` is told about every switch (metrics). ``reloads`` counts switches.
    """

    model: ScoringModel
    interval: float
    read_production: Callable[[], int | None]
    load: Callable[[int], ScoringModel]
    on_switch: Callable[[ScoringModel], None] | None = None
    clock: Callable[[], float] = time.monotonic
    reloads: int = 0
    failed: int | None = None  # the last version that could not be loaded
    _due: ReloadClock = field(init=False)

    def __post_init__(self) -> None:
        self._due = ReloadClock(self.interval, last=self.clock())  # just loaded: wait

    def check(self) -> ScoringModel:
        """The model to score the next batch with (the current one unless a switch happened)."""
        if not self._due.due(self.clock()):
            return self.model
        try:
            production = self.read_production()
        except Exception as exc:  # noqa: BLE001 - the DB may be away: keep scoring, retry later
            log.warning("could not read the production model version (%s); keeping model %d",
                        exc, self.model.version)
            return self.model
        target = version_to_load(self.model.version, production, self.failed)
        if target is None:
            if production == self.model.version:
                self.failed = None  # back on our model: a later promotion is tried afresh
            return self.model
        try:
            return self.switch_to(target)
        except Exception as exc:  # noqa: BLE001 - never crash, never score unverified
            self.failed = target
            log.error("production is now model %d but it cannot be loaded (%s); still scoring "
                      "with model %d", target, exc, self.model.version)
            return self.model

    def switch_to(self, version: int) -> ScoringModel:
        """Load ``version`` (hash-verified; its errors propagate) and score with it from now."""
        loaded = self.load(version)
        log.info("switching from model %d to model %d (threshold %.4f) at a batch boundary",
                 self.model.version, loaded.version, loaded.threshold)
        self.model, self.failed = loaded, None
        self.reloads += 1
        if self.on_switch is not None:
            self.on_switch(loaded)
        return loaded


@dataclass
class ProductionFence:
    """The production group's rule, one model at a time (module docstring): :meth:`check` at
    every batch boundary returns the model to score the batch with, or raises
    :class:`FraudstreamError` (one line) when this member must stop. ``reloader`` None: this
    member never switches (hot reload off, or an explicit version)."""

    group: str
    read_production: Callable[[], int | None]
    reloader: ModelReloader | None

    def check(self, model: ScoringModel) -> ScoringModel:
        try:
            production = self.read_production()
        except Exception as exc:  # noqa: BLE001 - the DB may be away: its commit will retry
            log.warning("could not read the production model version (%s)", exc)
            return model
        if production == model.version:
            return model
        member = (f"this member of the production group '{self.group}' scores with model "
                  f"{model.version}")
        if production is None:
            raise FraudstreamError(f"no model is production any more; {member}: stopping")
        if self.reloader is None:
            raise FraudstreamError(
                f"model {production} is production now; {member} and does not reload "
                f"(--reload-check 0 or an explicit --model-version): stopping so the group "
                f"never scores with two models; restart it to score with model {production}")
        try:
            return self.reloader.switch_to(production)
        except Exception as exc:
            raise FraudstreamError(
                f"model {production} is production now but cannot be loaded ({exc}); {member}: "
                "stopping so the group never scores with two models") from exc


def production_reloader(engine: Engine, model: ScoringModel, interval: float,
                        on_switch: Callable[[ScoringModel], None] | None = None
                        ) -> ModelReloader:
    """A :class:`ModelReloader` reading this database's registry."""
    from scorer.model import load_model

    def load(version: int) -> ScoringModel:
        loaded = load_model(engine, version, keyed=model.input != "transaction.v1")
        if loaded.input != model.input:
            raise FraudstreamError(f"model {version} takes {loaded.input} events, this scorer "
                                   f"scores {model.input} (start a scorer for them)")
        return loaded

    return ModelReloader(model=model, interval=interval,
                         read_production=lambda: production_version(engine),
                         load=load, on_switch=on_switch)
