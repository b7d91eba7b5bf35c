"""The tutorial's Keras model, metrics and fitting strategies.

Input: ``(n, 29)`` float32 from :class:`schemas.features.FeatureContract`; output: ``(n, 1)`` fraud
probability. Dense(16, relu) -> Dropout(0.5) -> Dense(1, sigmoid), output bias ``log(pos/neg)``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

import numpy as np

from models.dense import DenseScorer

log = logging.getLogger(__name__)

BATCH_SIZE = 2048
PATIENCE = 10
OVERSAMPLE_STEPS_PER_EPOCH = 20  # as the tutorial's resampled fit
STRATEGIES = ("weighted", "baseline", "oversample")


def load_keras() -> Any:
    """Import Keras (TensorFlow backend).

    psycopg's libpq and its OpenSSL must be loaded before TensorFlow: in the other order the
    process aborts (``free(): invalid pointer``) at the first SSL connection to PostgreSQL.
    """
    with contextlib.suppress(ImportError):
        import psycopg  # noqa: F401

    import keras

    return keras


def _metrics() -> list[Any]:
    keras = load_keras()

    return [
        keras.metrics.BinaryCrossentropy(name="cross_entropy"),
        keras.metrics.MeanSquaredError(name="brier"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.FalsePositives(name="fp"),
        keras.metrics.TrueNegatives(name="tn"),
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.BinaryAccuracy(name="accuracy"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
        keras.metrics.AUC(name="auc"),
        keras.metrics.AUC(name="prc", curve="PR"),
    ]


def make_model(n_features: int, output_bias: float | None = None) -> Any:
    """A compiled Keras model; ``output_bias`` initialises the sigmoid layer's bias."""
    keras = load_keras()

    bias = keras.initializers.Constant(output_bias) if output_bias is not None else "zeros"
    model = keras.Sequential([
        keras.Input(shape=(n_features,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1, activation="sigmoid", bias_initializer=bias),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.BinaryCrossentropy(), metrics=_metrics())
    return model


def initial_bias(y: np.ndarray) -> float:
    """``log(pos/neg)``: the bias that makes the untrained model predict the base rate."""
    pos = int(np.sum(y))
    return float(np.log(pos / (len(y) - pos)))


def class_weights(y: np.ndarray) -> dict[int, float]:
    """The tutorial's weights ``total/(2·neg)`` and ``total/(2·pos)``."""
    total, pos = len(y), int(np.sum(y))
    return {0: total / (2.0 * (total - pos)), 1: total / (2.0 * pos)}


class _EpochProgress:
    """Progress over epochs: a tqdm bar on a terminal, else a log line every 10 epochs."""

    def __new__(cls, epochs: int) -> Any:
        from tqdm import tqdm

        keras = load_keras()

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs: Any = None) -> None:
                self.bar = tqdm(total=epochs, desc="training", unit="epoch", file=sys.stderr,
                                disable=None)

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                logs = logs or {}
                loss, val_prc = f"{logs.get('loss', 0):.4f}", f"{logs.get('val_prc', 0):.4f}"
                self.bar.set_postfix(loss=loss, val_prc=val_prc)
                self.bar.update(1)
                if self.bar.disable and (epoch + 1) % 10 == 0:
                    log.info("epoch %d/%d: loss %s, val_prc %s", epoch + 1, epochs, loss, val_prc)

            def on_train_end(self, logs: Any = None) -> None:
                self.bar.close()

        return Callback()


def fit(strategy: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
        y_val: np.ndarray, *, epochs: int, seed: int) -> tuple[Any, dict[str, list[float]]]:
    """Train one strategy with early stopping on ``val_prc``; returns (model, history)."""
    keras = load_keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = make_model(x_train.shape[1], initial_bias(y_train))
    y_fit, y_val_fit = (np.asarray(y, dtype=np.float32).reshape(-1, 1) for y in (y_train, y_val))
    stop = keras.callbacks.EarlyStopping(monitor="val_prc", mode="max", patience=PATIENCE,
                                         restore_best_weights=True, verbose=0)
    common: dict[str, Any] = {"epochs": epochs, "validation_data": (x_val, y_val_fit), "verbose": 0,
                              "callbacks": [stop, _EpochProgress(epochs)]}
    if strategy == "baseline":
        history = model.fit(x_train, y_fit, batch_size=BATCH_SIZE, **common)
    elif strategy == "weighted":
        history = model.fit(x_train, y_fit, batch_size=BATCH_SIZE,
                            class_weight=class_weights(y_train), **common)
    elif strategy == "oversample":
        model.layers[-1].bias.assign([0.0])  # balanced batches: start at p = 0.5, as the tutorial
        history = model.fit(_balanced_batches(x_train, y_train, seed), shuffle=False,
                            steps_per_epoch=OVERSAMPLE_STEPS_PER_EPOCH, **common)
    else:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    ran = len(history.history.get("loss", []))
    if stop.stopped_epoch > 0:
        best = int(np.argmax(history.history["val_prc"])) + 1
        log.info("%s: early stopping at epoch %d of %d (validation AUPRC had not improved for %d "
                 "epochs); restored the weights of epoch %d", strategy, ran, epochs, PATIENCE,
                 best)
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _balanced_batches(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """An endless dataset of 2048-row batches drawn 50/50 from positives and negatives."""
    import tensorflow as tf

    def endless(mask: np.ndarray) -> tf.data.Dataset:
        labels = y[mask].astype(np.float32).reshape(-1, 1)
        ds = tf.data.Dataset.from_tensor_slices((x[mask], labels))
        return ds.shuffle(100_000, seed=seed).repeat()

    pos, neg = endless(y == 1), endless(y == 0)
    mixed = tf.data.Dataset.sample_from_datasets([pos, neg], weights=[0.5, 0.5], seed=seed)
    return mixed.batch(BATCH_SIZE).prefetch(2)


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Scores ``(n,)`` float64 for model input ``(n, 29)`` (the scorer's exact arithmetic:
    the ``dense`` family's numpy forward pass, :class:`models.dense.DenseScorer`)."""
    return DenseScorer.from_keras(model).score(x)
