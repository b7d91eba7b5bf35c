"""Loading a registered model for scoring, after checking every artifact's hash.

The scorer never imports TensorFlow: it loads the framework-free scoring form of the family the
registry names (:mod:`models`) — the dense net's weights as plain numbers, XGBoost's own JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

import models
from metrics.drift import load_reference
from schemas.behaviour import BehaviourContract
from schemas.errors import FraudstreamError
from schemas.features import FeatureContract
from schemas.keyed import INPUT_KEYED, INPUT_V1
from scorer.process import ScoringModel
from store import registry


def load_model(engine: Engine, version: int | str = "production",
               home: Path | None = None, *, keyed: bool = False) -> ScoringModel:
    """The registered model ``version`` (number or ``"production"``), hash-verified.

    A keyed model (input ``transaction.v2``: behaviour features) is refused unless ``keyed``
    (the stateless scorer cannot compute its features; the gate can score it on a history);
    its behaviour spec's hash is checked against the manifest's.

    Raises :class:`store.registry.ArtifactIntegrityError` when any artifact (or the family)
    differs from its manifest. Nothing is unpickled: ``dense.npz`` is read with
    ``allow_pickle=False``, XGBoost's model by its own JSON parser.
    """
    record = registry.get(engine, version)
    kind = (record.training or {}).get("input", INPUT_V1)
    if kind == INPUT_KEYED and not keyed:
        raise FraudstreamError(
            f"model {record.version} takes keyed transactions ({INPUT_KEYED}, behaviour "
            f"features): this scorer scores {INPUT_V1} models (keyed scoring needs per-card "
            "state in the stream)")
    manifest = registry.manifest_of(record, home)
    directory = record.path(home)
    try:
        net = models.load(record.family, directory)
        contract: FeatureContract | BehaviourContract = \
            FeatureContract.load(directory / "feature_contract.json") if kind == INPUT_V1 \
            else BehaviourContract.load(directory / BehaviourContract.FILE,
                                        manifest.get("behaviour_spec_sha256", "missing"))
        threshold = float(json.loads((directory / "threshold.json").read_text())["threshold"])
        drift = load_reference(directory)  # None: registered without drift_reference.json
    except FileNotFoundError as exc:
        raise FraudstreamError(
            f"model {record.version} ({record.family}) cannot be loaded: {exc.filename} is "
            "missing (models registered before model families carry no framework-free scoring "
            "form: train and register it again)") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise FraudstreamError(f"model {record.version} cannot be loaded: {exc}") from exc
    except Exception as exc:  # XGBoostError and other loader failures of a verified file
        if isinstance(exc, FraudstreamError):
            raise
        raise FraudstreamError(f"model {record.version} cannot be loaded: {exc}") from exc
    return ScoringModel(version=record.version, threshold=threshold, contract=contract, net=net,
                        drift=drift, input=kind)
