"""Loading a registered model for scoring, after checking every artifact's hash."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from schemas.errors import FraudstreamError
from schemas.features import FeatureContract
from scorer.process import ScoringModel
from store import registry
from trainer.model import DenseScorer, load_keras


def load_model(engine: Engine, version: int | str = "production",
               home: Path | None = None) -> ScoringModel:
    """The registered model ``version`` (number or ``"production"``), hash-verified.

    Raises :class:`store.registry.ArtifactIntegrityError` when any artifact differs from its
    manifest; the Keras file is loaded with ``safe_mode`` (no arbitrary code).
    """
    keras = load_keras()
    record = registry.get(engine, version)
    directory = registry.verify(record, home)
    try:
        net = keras.saving.load_model(directory / "model.keras", compile=False, safe_mode=True)
        contract = FeatureContract.load(directory / "feature_contract.json")
        threshold = float(json.loads((directory / "threshold.json").read_text())["threshold"])
    except (OSError, ValueError, KeyError) as exc:
        raise FraudstreamError(f"model {record.version} cannot be loaded: {exc}") from exc
    return ScoringModel(version=record.version, threshold=threshold, contract=contract,
                        net=DenseScorer.from_keras(net))
