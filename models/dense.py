"""The ``dense`` family: the tutorial's Keras net (Dense(16, relu) → Dropout → Dense(1, sigmoid))
in its framework-free form — its weights as plain float64 arrays in ``dense.npz`` (read with
``allow_pickle=False``) and a numpy forward pass. No TensorFlow here: the trainer converts the
Keras model with :meth:`DenseScorer.from_keras` and checks it against Keras at registration.

Explanations are **integrated gradients** of the logit from the baseline ``x0 = 0`` — the
train-split mean transaction, since the feature contract standardises every input — computed in
closed form, not by a Riemann sum. Along the straight path ``x0 + a·(x - x0)`` each hidden unit's
pre-activation ``z_j(a)`` is linear in ``a``, so the fraction of the path on which ReLU is active
is exact: ``(relu(z_j(1)) - relu(z_j(0))) / (z_j(1) - z_j(0))``. Hence
``phi_i = (x_i - x0_i) · Σ_j W1[i, j] · w2[j] · frac_j`` and, exactly (up to float rounding),
``Σ_i phi_i = logit(x) - logit(x0)`` (completeness), unlike gradient × input, which for this
net misses the bias terms and the ReLU switches between ``x0`` and ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

WEIGHTS_FILE = "dense.npz"


@dataclass(frozen=True)
class DenseScorer:
    """Inference for the trained net as a float64 numpy forward pass.

    Each row's score depends on that row alone (no BLAS blocking across rows), so scoring a
    micro-batch gives bit-identical scores to scoring the whole set offline; it agrees with
    Keras' ``model.predict`` to ~1e-6. Dropout is the identity at inference.
    """

    family: ClassVar[str] = "dense"

    kernels: tuple[np.ndarray, ...]  # (in, out) per Dense layer
    biases: tuple[np.ndarray, ...]  # (out,) per Dense layer

    @classmethod
    def from_keras(cls, model: Any) -> DenseScorer:
        """The Dense layers' weights of a Keras model (duck-typed: no Keras import here)."""
        dense = [layer for layer in model.layers
                 if hasattr(layer, "kernel") and hasattr(layer, "bias")]
        kernels = tuple(np.asarray(layer.kernel.numpy(), dtype=np.float64) for layer in dense)
        biases = tuple(np.asarray(layer.bias.numpy(), dtype=np.float64) for layer in dense)
        return cls(kernels=kernels, biases=biases)

    def margin(self, x: np.ndarray) -> np.ndarray:
        """The logit ``(n,)`` float64 for model input ``(n, 29)``."""
        h = np.asarray(x, dtype=np.float64)
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
            h = np.einsum("ij,jk->ik", h, kernel) + bias
            if i < last:
                h = np.maximum(h, 0.0)
        return h.reshape(-1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Fraud probabilities ``(n,)`` float64 for model input ``(n, 29)``."""
        return 1.0 / (1.0 + np.exp(-self.margin(x)))

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact integrated gradients of the logit from ``x0 = 0``: ``(phi (n, 29), base (n,))``
        with ``phi.sum(1) + base == margin(x)``; ``base`` is ``logit(x0)``."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.kernels[0].shape[0])
        base = np.full(len(x), float(self.margin(np.zeros((1, x.shape[1])))[0]))
        if len(self.kernels) == 1:  # logistic regression: the logit is linear
            return x * self.kernels[0][:, 0], base
        if len(self.kernels) != 2:
            raise ValueError("closed-form integrated gradients need one hidden layer")
        (w1, w2), (b1, _) = self.kernels, self.biases
        z0 = b1  # pre-activations at the baseline x0 = 0
        z1 = np.einsum("ij,jk->ik", x, w1) + b1
        dz = z1 - z0
        active = np.maximum(z1, 0.0) - np.maximum(z0, 0.0)
        safe = np.where(dz == 0.0, 1.0, dz)
        frac = np.where(dz == 0.0, (z0 > 0.0).astype(np.float64), active / safe)  # (n, h)
        return x * ((frac * w2[:, 0]) @ w1.T), base

    def explain(self, x: np.ndarray) -> np.ndarray:
        return self.contributions(x)[0]

    def save(self, directory: Path) -> list[str]:
        """Write ``dense.npz`` (float64 arrays only; no object arrays, so no pickle)."""
        arrays: dict[str, np.ndarray] = {}
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
            arrays[f"kernel_{i}"] = np.ascontiguousarray(kernel, dtype=np.float64)
            arrays[f"bias_{i}"] = np.ascontiguousarray(bias, dtype=np.float64)
        with (Path(directory) / WEIGHTS_FILE).open("wb") as fh:
            np.savez(fh, **arrays)
        return [WEIGHTS_FILE]

    @classmethod
    def load(cls, directory: Path) -> DenseScorer:
        """Read ``dense.npz`` with ``allow_pickle=False``; check the layer shapes chain."""
        with np.load(Path(directory) / WEIGHTS_FILE, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name], dtype=np.float64) for name in data.files}
        layers = len(arrays) // 2
        try:
            kernels = tuple(arrays[f"kernel_{i}"] for i in range(layers))
            biases = tuple(arrays[f"bias_{i}"] for i in range(layers))
        except KeyError as exc:
            raise ValueError(f"{WEIGHTS_FILE}: missing array {exc}") from exc
        width = None
        for kernel, bias in zip(kernels, biases, strict=True):
            if kernel.ndim != 2 or bias.shape != (kernel.shape[1],) or (
                    width is not None and kernel.shape[0] != width):
                raise ValueError(f"{WEIGHTS_FILE}: layer shapes do not chain")
            width = kernel.shape[1]
        if not layers or width != 1:
            raise ValueError(f"{WEIGHTS_FILE}: the last layer must have one output")
        return cls(kernels=kernels, biases=biases)
