"""Few-shot linear evaluation (the ViT paper, section 4.1, "Metrics").

The paper: "Few-shot accuracies are obtained by solving a regularized
least-squares regression problem that maps the (frozen) representation of a
subset of training images to {-1, 1}^K target vectors." It publishes no code
for it; the details below are those of big_vision's
`big_vision/evaluators/fewshot_lsr.py` and `configs/common_fewshot.py`
(google-research/big_vision, commit 0127fb6), the public code of the
paper's authors' group:
- features whitened with the shots' mean and standard deviation (+ 1e-5),
  and a constant feature of 100 appended for the bias ("large so it's almost
  unregularized");
- the closed-form solution through one eigendecomposition, in the (N, N) or
  (D, D) form, whichever is smaller;
- shots of each class: the first `shots` of a per-class permutation from
  `np.random.default_rng(seed)` (so 5 shots contain the 1 shot);
- config defaults: shots (1, 5, 10, 25), l2_reg 2**10, num_seeds 3 (seeds
  0, 1, 2, each reported on its own), representation "pre_logits", images
  `resize(256)|central_crop(224)|value_range(-1,1)`.
"""

import numpy as np

from keras_vit.errors import ArgumentError
from keras_vit.utils import check_positive_int

SHOTS = (1, 5, 10, 25)  # big_vision's configs/common_fewshot.py
L2_REG = 2.0**10  # ditto
NUM_SEEDS = 3  # ditto
BIAS_CONSTANT = 100.0  # the bias feature; large, so the bias is almost unregularised


class LeastSquaresProbe:
    """A linear classifier fit in closed form by regularised least squares.

    Minimises ||X' W - Y||^2 + l2_reg ||W||^2, where X' holds the whitened
    features with a constant column `BIAS_CONSTANT` appended and Y the labels
    as {-1, 1}^K rows (+1 for the class, -1 elsewhere). With N points of
    dimension D the solution is (X'^T X' + l2 I)^-1 X'^T Y when N >= D and
    X'^T (X' X'^T + l2 I)^-1 Y otherwise; both come from one eigendecomposition,
    so re-solving for another `l2_reg` (`solve`) costs one matrix product.

    Args:
        num_classes: K, the number of classes.
        l2_reg: the ridge penalty. Defaults to 2**10 (big_vision).

    Example:

    >>> probe = LeastSquaresProbe(num_classes=3).fit(train_x, train_y)
    >>> probe.score(test_x, test_y)
    """

    def __init__(self, num_classes, l2_reg=L2_REG):
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.l2_reg = _check_l2_reg(l2_reg)
        self.weights = None  # (D + 1, K), the last row multiplies BIAS_CONSTANT

    def fit(self, features, labels):
        """Fits the probe; `features` (N, D), `labels` (N,) ints in [0, K)."""
        x, labels = _check_features_labels(features, labels, self.num_classes)
        self.mean = x.mean(axis=0, keepdims=True)  # (1, D)
        self.std = x.std(axis=0, keepdims=True) + 1e-5  # (1, D), as big_vision
        x = self._design(x)  # (N, D + 1)
        y = 2.0 * np.eye(self.num_classes)[labels] - 1.0  # (N, K) in {-1, 1}
        if x.shape[0] >= x.shape[1]:
            self._eigs, q = np.linalg.eigh(x.T @ x)  # (D+1,), (D+1, D+1)
            self._lhs, self._rhs = q, q.T @ (x.T @ y)
        else:
            self._eigs, q = np.linalg.eigh(x @ x.T)  # (N,), (N, N)
            self._lhs, self._rhs = x.T @ q, q.T @ y
        return self.solve(self.l2_reg)

    def solve(self, l2_reg):
        """Recomputes the weights for another `l2_reg` from the fitted cache."""
        if not hasattr(self, "_eigs"):
            raise ValueError("This LeastSquaresProbe is not fitted yet; call fit() first.")
        self.l2_reg = _check_l2_reg(l2_reg)
        scaling = 1.0 / (self._eigs + self.l2_reg)  # (M,)
        self.weights = (self._lhs * scaling[None, :]) @ self._rhs  # (D + 1, K)
        return self

    def decision_function(self, features):
        """The regression outputs (N, K); the predicted class is their argmax."""
        if self.weights is None:
            raise ValueError("This LeastSquaresProbe is not fitted yet; call fit() first.")
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[1]:
            raise ArgumentError(
                "Received an invalid value for argument `features`, expected "
                f"shape (N, {self.mean.shape[1]}). Received: shape {x.shape}"
            )
        return self._design(x) @ self.weights

    def predict(self, features):
        return np.argmax(self.decision_function(features), axis=1)

    def score(self, features, labels):
        """Accuracy of the predictions on (`features`, `labels`)."""
        labels = np.asarray(labels).reshape(-1)
        return float(np.mean(self.predict(features) == labels))

    def _design(self, x):
        x = (x - self.mean) / self.std
        return np.pad(x, ((0, 0), (0, 1)), constant_values=BIAS_CONSTANT)


def select_shots(labels, shots, num_classes, seed=0):
    """Indices of `shots` examples per class, chosen by a seeded permutation.

    As big_vision: one permutation per class from `np.random.default_rng(seed)`,
    then its first `shots` entries, so a larger shot count contains the
    smaller ones. A class with fewer examples contributes all it has.

    Returns:
        An int array of indices into `labels`, grouped by class.
    """
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == k)) for k in range(num_classes)]
    return np.concatenate([idx[:shots] for idx in per_class]).astype(np.int64)


def fewshot_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes=None,
    shots=SHOTS,
    l2_reg=L2_REG,
    seed=0,
    num_seeds=NUM_SEEDS,
    per_seed=False,
):
    """Few-shot linear accuracy for each shot count, as in the paper.

    Args:
        train_features: (N, D) frozen features of the pool the shots come from.
        train_labels: (N,) int labels.
        test_features: (M, D) features of the evaluation split.
        test_labels: (M,) int labels.
        num_classes: K. Defaults to 1 + the largest label seen.
        shots: shot counts per class. Defaults to (1, 5, 10, 25).
        l2_reg: ridge penalty. Defaults to 2**10.
        seed: seed of the first shot selection. Defaults to 0.
        num_seeds: selections with seeds seed, seed+1, ...; the accuracy is
            their mean (big_vision runs 3 and reports each). Defaults to 3.
        per_seed: also return each seed's accuracy. Defaults to False.

    Returns:
        A dict {shots: mean accuracy over the seeds}; with `per_seed`, a pair
        (that dict, {shots: [accuracy of each seed]}).
    """
    train_labels = _as_int_labels("train_labels", train_labels)
    test_labels = _as_int_labels("test_labels", test_labels)
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    shots = [check_positive_int("shots", s) for s in shots]
    num_seeds = check_positive_int("num_seeds", num_seeds)
    train_features = np.asarray(train_features, dtype=np.float64)
    results, each = {}, {}
    for n in shots:
        accuracies = []
        for s in range(seed, seed + num_seeds):
            idx = select_shots(train_labels, n, num_classes, seed=s)
            probe = LeastSquaresProbe(num_classes, l2_reg)
            probe.fit(train_features[idx], train_labels[idx])
            accuracies.append(probe.score(test_features, test_labels))
        results[n] = float(np.mean(accuracies))
        each[n] = [float(a) for a in accuracies]
    return (results, each) if per_seed else results


def _check_l2_reg(l2_reg):
    if isinstance(l2_reg, bool) or not np.isscalar(l2_reg) or not l2_reg > 0:
        raise ArgumentError(
            "Received an invalid value for argument `l2_reg`, expected a "
            f"positive float. Received: l2_reg={l2_reg!r}"
        )
    return float(l2_reg)


def _as_int_labels(name, labels):
    labels = np.asarray(labels)
    if labels.ndim == 2:  # one-hot
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    if labels.size == 0 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ArgumentError(
            f"Received an invalid value for argument `{name}`, expected "
            f"non-negative integer class labels. Received: dtype={labels.dtype}, "
            f"shape={labels.shape}"
        )
    return labels.astype(np.int64)


def _check_features_labels(features, labels, num_classes):
    x = np.asarray(features, dtype=np.float64)
    labels = _as_int_labels("labels", labels)
    if x.ndim != 2 or x.shape[0] != labels.shape[0]:
        raise ArgumentError(
            "Received an invalid value for argument `features`, expected shape "
            f"(N, D) with N = len(labels) = {labels.shape[0]}. Received: shape {x.shape}"
        )
    if labels.max() >= num_classes:
        raise ArgumentError(
            "Received an invalid value for argument `labels`, expected values "
            f"in [0, {num_classes}). Received: max label {labels.max()}"
        )
    return x, labels
