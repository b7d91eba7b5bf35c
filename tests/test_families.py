"""Model families (models/): one interface for dense and xgboost; registration with the family
and a framework-free scoring form; no TensorFlow and no pickle in the scorer; explanations."""

import json
import pickle
import subprocess
import sys
import zipfile
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text, update

import models
from models.dense import WEIGHTS_FILE, DenseScorer
from models.xgb import MODEL_FILE, XGBoostScorer
from models.xgb import fit as fit_xgboost
from schemas.errors import FraudstreamError
from schemas.events import AlertV1
from schemas.features import EVENT_FEATURES, FeatureContract
from scorer.decode import decode_batch
from scorer.model import load_model
from scorer.process import ScoringModel, score_batch
from scorer.sink import write_batch
from store import registry
from store.db import MIGRATIONS_DIR, connect
from store.tables import alerts, model_versions
from trainer.data import load_csv, split
from trainer.pipeline import train
from trainer.synth import write_csv

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3000, 29)).astype(np.float32)
Y = ((X[:, 0] + X[:, 1] * X[:, 2] + RNG.normal(size=3000)) > 2.0).astype(np.int8)


def random_net(hidden=16, seed=0):
    rng = np.random.default_rng(seed)
    return DenseScorer(kernels=(rng.normal(size=(29, hidden)), rng.normal(size=(hidden, 1))),
                       biases=(rng.normal(size=hidden), rng.normal(size=1)))


@pytest.fixture(scope="module")
def booster():
    scorer, history = fit_xgboost(X[:2400], Y[:2400], X[2400:], Y[2400:], seed=1)
    assert set(history) == {"loss", "val_loss", "prc", "val_prc"}
    return scorer


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return str(write_csv(tmp_path_factory.mktemp("data") / "f.csv", 12_000, fraud_rate=0.02,
                         seed=11))


# ---------------------------------------------------------------- the interface, no database


@pytest.mark.parametrize("family", ["dense", "xgboost"])
def test_both_families_implement_the_interface(family, booster):
    net = random_net() if family == "dense" else booster
    assert isinstance(net, models.ScoringFamily) and net.family == family
    assert models.family_class(family) is type(net)
    scores, phi = net.score(X), net.explain(X[:50])
    assert scores.shape == (3000,) and scores.dtype == np.float64
    assert np.all((scores >= 0) & (scores <= 1))
    assert phi.shape == (50, 29) and phi.dtype == np.float64
    # micro-batches score bit-identically to one big batch, for every family
    parts = np.concatenate([net.score(X[i : i + 7]) for i in range(0, len(X), 7)])
    np.testing.assert_array_equal(scores, parts)
    with pytest.raises(FraudstreamError, match="unknown model family"):
        models.family_class("sklearn-pickle")


def test_dense_integrated_gradients_are_complete_and_exact():
    net = random_net(seed=3)
    x = X[:200]
    phi, base = net.contributions(x)
    # completeness: contributions + logit(baseline) == logit(x), to float rounding
    np.testing.assert_allclose(phi.sum(axis=1) + base, net.margin(x), rtol=0, atol=1e-9)
    assert np.all(base == net.margin(np.zeros((1, 29)))[0])
    # exact: a fine Riemann sum of gradient along the path converges to the closed form
    w1, w2 = net.kernels[0], net.kernels[1][:, 0]
    alphas = (np.arange(20_000) + 0.5) / 20_000
    for row in x[:3].astype(np.float64):
        pre = np.outer(alphas, row) @ w1 + net.biases[0]  # (steps, hidden)
        grads = ((pre > 0) * w2) @ w1.T  # (steps, 29)
        riemann = row * grads.mean(axis=0)
        np.testing.assert_allclose(riemann, net.contributions(row[None])[0][0], atol=2e-3)
    # with every hidden unit active on the whole path, IG is the linear model's w·x
    lin = DenseScorer(kernels=(np.abs(w1) * 0 + 0.01, np.ones((w1.shape[1], 1))),
                      biases=(np.full(w1.shape[1], 100.0), np.zeros(1)))
    np.testing.assert_allclose(lin.explain(x), x.astype(np.float64) * 0.01 * w1.shape[1],
                               rtol=1e-12)


def test_xgboost_contributions_plus_bias_sum_to_the_margin(booster):
    phi, bias = booster.contributions(X[:500])
    np.testing.assert_allclose(phi.sum(axis=1) + bias, booster.margin(X[:500]), atol=1e-4)
    np.testing.assert_allclose(1 / (1 + np.exp(-booster.margin(X[:500]))), booster.score(X[:500]),
                               atol=1e-6)
    assert np.ptp(bias) == 0  # the bias column is the model's expected margin


def test_top_features_rank_by_absolute_contribution():
    phi = np.zeros((2, 29))
    phi[0, [3, 28, 0, 5, 7, 9]] = [0.5, -2.0, 1.0, 0.1, -0.2, 0.05]
    top = models.top_features(phi)
    assert [t["feature"] for t in top[0]] == ["amount", "v1", "v4", "v8", "v6"]
    assert top[0][0]["contribution"] == -2.0 and len(top[1]) == 5


def test_a_loaded_booster_scores_with_the_serving_threads(tmp_path, booster):
    """A loaded model predicts with ``SERVING_THREADS`` (one), whatever it was trained with, and
    scores and explains exactly as the trained one."""
    from models.xgb import SERVING_THREADS

    booster.save(tmp_path)
    loaded = XGBoostScorer.load(tmp_path)
    config = json.loads(loaded.booster.save_config())
    assert int(config["learner"]["generic_param"]["nthread"]) == SERVING_THREADS == 1
    np.testing.assert_array_equal(loaded.score(X), booster.score(X))
    np.testing.assert_allclose(loaded.explain(X), booster.explain(X), atol=1e-6)


def test_saved_forms_round_trip_without_pickle(tmp_path, booster, monkeypatch):
    net = random_net()
    assert net.save(tmp_path) == [WEIGHTS_FILE] and booster.save(tmp_path) == [MODEL_FILE]
    monkeypatch.setattr(pickle, "load", _no_pickle)
    monkeypatch.setattr(pickle, "loads", _no_pickle)
    np.testing.assert_array_equal(DenseScorer.load(tmp_path).score(X), net.score(X))
    np.testing.assert_array_equal(XGBoostScorer.load(tmp_path).score(X), booster.score(X))
    assert_no_pickle(tmp_path)
    # an object array (which only pickle could read) is refused, not unpickled
    np.savez(tmp_path / WEIGHTS_FILE, kernel_0=np.array([{"a": 1}], dtype=object),
             bias_0=np.zeros(1))
    with pytest.raises(ValueError, match="allow_pickle"):
        DenseScorer.load(tmp_path)


def _no_pickle(*_args, **_kwargs):
    raise AssertionError("a model artifact was unpickled")


def assert_no_pickle(directory):
    """Every artifact is JSON, or .npy arrays of plain numbers; none is a pickle stream."""
    for path in directory.iterdir():
        data = path.read_bytes()
        assert not data.startswith(b"\x80"), f"{path.name} looks like a pickle"
        assert path.suffix not in (".pkl", ".pickle", ".joblib"), path.name
        if path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".npz":
            with zipfile.ZipFile(path) as zf:
                for member in zf.namelist():
                    with zf.open(member) as fh:
                        array = np.lib.format.read_array(fh, allow_pickle=False)
                    assert array.dtype.kind == "f", member


# ------------------------------------------------------------ registry, scorer, real databases


def test_xgboost_registers_and_scores_through_the_same_interface(csv, home, db_url, monkeypatch):
    summary = train(csv, family="xgboost", seed=1, db=db_url)
    assert (summary["version"], summary["family"], summary["stage"]) == (1, "xgboost",
                                                                         "production")
    engine = connect(db_url)
    record = registry.get(engine, 1)
    assert record.family == "xgboost" and record.summary()["family"] == "xgboost"
    directory = home / "models" / "1"
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["family"] == "xgboost"
    assert {MODEL_FILE, "feature_contract.json", "threshold.json", "parity.json"} <= set(
        manifest["files"])
    assert "model.keras" not in manifest["files"]
    assert json.loads((directory / "parity.json").read_text())["max_abs_diff"] == 0.0
    assert_no_pickle(directory)
    # loading never unpickles
    monkeypatch.setattr(pickle, "load", _no_pickle)
    monkeypatch.setattr(pickle, "loads", _no_pickle)
    model = load_model(engine, "production", home=home)
    assert isinstance(model.net, XGBoostScorer)
    splits = split(load_csv(csv), seed=1)
    flagged = model.score_raw(splits.test_raw) >= model.threshold
    test = summary["metrics"]["test"]
    assert int(np.sum(flagged & (splits.y_test == 1))) == test["tp"]
    assert int(np.sum(flagged & (splits.y_test == 0))) == test["fp"]
    assert test["auc"] > 0.5
    # a tampered XGBoost model file is refused
    model_file = directory / MODEL_FILE
    tree = json.loads(model_file.read_text())
    text_form = json.dumps(tree)
    model_file.write_text(text_form.replace('"split_conditions":[', '"split_conditions":[9e9,', 1))
    with pytest.raises(registry.ArtifactIntegrityError, match=MODEL_FILE):
        load_model(engine, 1, home=home)


def test_registry_refuses_a_family_that_differs_from_the_manifest(csv, home, db_url):
    train(csv, family="xgboost", seed=2, db=db_url)
    engine = connect(db_url)
    with engine.begin() as conn:
        conn.execute(update(model_versions).values(family="dense"))
    with pytest.raises(registry.ArtifactIntegrityError, match="family"):
        load_model(engine, 1, home=home)
    with pytest.raises(FraudstreamError, match="unknown model family"):
        registry.register(engine, home, strategy="weighted", threshold=0.5,
                          threshold_policy="max-f1", metrics={}, data_sha256="0" * 64,
                          home=home, family="pickle")


def test_dense_scoring_form_checked_against_keras_at_registration(csv, home, tmp_path,
                                                                  monkeypatch):
    db = f"sqlite:///{tmp_path / 'p.db'}"
    summary = train(csv, epochs=2, seed=1, db=db)
    assert summary["family"] == "dense"
    directory = home / "models" / "1"
    parity = json.loads((directory / "parity.json").read_text())
    assert parity["reference"] == "keras model.predict" and parity["max_abs_diff"] < 1e-5
    assert parity["rows"] == 1920  # the validation rows
    assert_no_pickle_except_keras(directory)
    # a scoring form that drifts from the Keras model is refused: nothing is registered
    real_save = DenseScorer.save

    def drifting_save(self, d):
        shifted = DenseScorer(self.kernels, (*self.biases[:-1], self.biases[-1] + 0.5))
        return real_save(shifted, d)

    monkeypatch.setattr(DenseScorer, "save", drifting_save)
    with pytest.raises(FraudstreamError, match="refusing to register"):
        train(csv, epochs=1, seed=1, db=db)
    assert [r.version for r in registry.list_versions(connect(db))] == [1]


def assert_no_pickle_except_keras(directory):
    """The .keras file is the trainer's (a zip of JSON config and weights); the scorer never
    opens it. Everything else must pass the no-pickle check."""
    scratch = directory.parent / "scratch"
    scratch.mkdir()
    for p in directory.iterdir():
        if p.suffix != ".keras":
            (scratch / p.name).write_bytes(p.read_bytes())
    assert_no_pickle(scratch)


NO_TF_IMPORTS = ("import sys, scorer.service, scorer.model, models, fraudstream_cli; "
                 "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
                 "sorted(m for m in sys.modules if 'tensorflow' in m or 'keras' in m)[:5]")


def test_scorer_imports_no_tensorflow():
    proc = subprocess.run([sys.executable, "-c", NO_TF_IMPORTS], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


LOAD_AND_SCORE = """
import json, pickle, sys
import numpy as np
def refuse(*a, **k):
    raise AssertionError("unpickled")
pickle.load = pickle.loads = refuse
from scorer.model import load_model
from store.db import connect
from pathlib import Path
url, home, version = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
model = load_model(connect(url, create=False), version, home=home)
raw = np.abs(np.random.default_rng(0).normal(size=(100, 29)))
scores = model.score_raw(raw)
top = model.top_features(raw[:3])
assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules
print(json.dumps({"family": type(model.net).family, "scores": scores.tolist(), "top": top}))
"""


# One database (what is checked is the process without TensorFlow; the registry's reads on
# both databases are checked by the registry tests): .ci/run's time.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_registered_models_load_and_score_in_a_process_without_tensorflow(csv, home, db_url):
    train(csv, epochs=2, seed=4, db=db_url)  # v1 dense (Keras, in this process)
    train(csv, family="xgboost", seed=4, db=db_url)  # v2 xgboost
    engine = connect(db_url)
    raw = np.abs(np.random.default_rng(0).normal(size=(100, 29)))
    for version, family in ((1, "dense"), (2, "xgboost")):
        proc = subprocess.run([sys.executable, "-c", LOAD_AND_SCORE, db_url, str(home),
                               str(version)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout)
        assert out["family"] == family and len(out["top"]) == 3
        # bit-identical to scoring in this process
        assert out["scores"] == load_model(engine, version, home=home).score_raw(raw).tolist()


def test_cli_trains_xgboost(csv, home, tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    proc = subprocess.run([sys.executable, "-m", "fraudstream_cli", "train", "--csv", csv,
                           "--family", "xgboost", "--db", db, "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["family"] == "xgboost" and out["metrics"]["test"]["auc"] > 0.5
    bad = subprocess.run([sys.executable, "-m", "fraudstream_cli", "train", "--csv", csv,
                          "--family", "xgboost", "--compare", "--db", db],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--family dense" in bad.stderr


# --------------------------------------------------------------------- explanations on alerts


def event(i, v1):
    return {"schema_version": 1, "transaction_id": f"t-{i}", "time_s": float(i),
            **{f"v{k}": 0.01 * k for k in range(1, 29)}, "v1": v1, "amount": 10.0 + i}


class Record:
    def __init__(self, value, offset):
        self.value, self.offset, self.topic, self.partition, self.key = value, offset, "tx", 0, None


def test_scorer_stores_top_features_for_alerts_only(db_url, home, tmp_path):
    engine = connect(db_url)
    staging = tmp_path / "s"
    staging.mkdir()
    (staging / "x.json").write_text("{}")
    record = registry.register(engine, staging, strategy="weighted", threshold=0.5,
                               threshold_policy="max-f1", metrics={}, data_sha256="0" * 64,
                               home=home)
    net = random_net(seed=5)
    contract = FeatureContract(mean=(0.0,) * 29, scale=(1.0,) * 29)
    model = ScoringModel(version=record.version, threshold=0.5, contract=contract, net=net)
    # 1000 events (≥ COPY_MIN_ROWS alerts, so PostgreSQL takes the COPY path too)
    values = np.random.default_rng(1).normal(scale=2.0, size=1000)
    records = [Record(json.dumps(event(i, float(v))).encode(), i) for i, v in enumerate(values)]
    scored = score_batch(decode_batch(records), model, now=datetime(2024, 1, 1, tzinfo=UTC))
    flagged = np.flatnonzero(scored.flagged)
    assert 200 <= len(flagged) < 1000
    x = contract.transform(decode_batch(records).raw_matrix())
    expected = models.top_features(net.explain(x[flagged]))
    assert [a.top_features is not None for a in scored.alerts] == [True] * len(flagged)
    first = scored.alerts[0]
    assert [f.model_dump() for f in first.top_features] == expected[0]
    assert {f.feature for f in first.top_features} <= set(EVENT_FEATURES)
    assert len(first.top_features) == 5
    # the alert event carries them on the wire and parses back
    wire = AlertV1.model_validate_json(first.model_dump_json())
    assert wire.top_features == first.top_features
    with engine.begin() as conn:
        write_batch(conn, scored)
        write_batch(conn, scored)  # redelivery: nothing changes
    with engine.connect() as conn:
        rows = conn.execute(select(alerts.c.transaction_id, alerts.c.explanation,
                                   alerts.c.feature_values)
                            .order_by(alerts.c.source_offset)).all()
    assert [r.transaction_id for r in rows] == [f"t-{i}" for i in flagged]
    assert [r.explanation for r in rows] == expected
    # … with the raw values the model saw for those features, in the same write
    raw = decode_batch(records).raw_matrix()
    column = {name: j for j, name in enumerate(EVENT_FEATURES)}
    assert [r.feature_values for r in rows] == [
        {f["feature"]: float(raw[i, column[f["feature"]]]) for f in explained}
        for i, explained in zip(flagged, expected, strict=True)]


def test_migration_0003_marks_existing_models_dense(tmp_path):
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text(
            "INSERT INTO model_versions (version, created_at, strategy, threshold, "
            "threshold_policy, metrics, artifact_dir, manifest_sha256, data_sha256, stage) "
            "VALUES (1, '2024-01-01 00:00:00', 'weighted', 0.5, 'max-f1', '{}', 'models/1', "
            "'a', 'b', 'production')"))
    engine.dispose()
    assert registry.get(connect(url), 1).family == "dense"
