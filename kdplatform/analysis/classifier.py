"""The memorization classifier (section 4.1, A.4): can we tell which examples the student will memorize
from what is known before distillation?

Logistic regression on standardized features (default: teacher ppl, baseline ppl, zlib entropy,
teacher-baseline KLD). Positives are the student-memorized examples; each trial samples `ratio` times as
many negatives afresh, holds out `test_size` of that sample (stratified) and records test accuracy,
precision, recall, F1, ROC-AUC and the coefficients, which are standardized because the features are
(Tables 4-7). The risk score of every example comes from one model fit on the union of all trials'
samples, negatives weighted so the class prior stays 1:ratio as in the trials.

Trial t draws from np.random.default_rng([seed, t]): first the negatives (rng.choice without replacement,
then sorted), then the split's random_state (rng.integers(2**31 - 1)). Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

DEFAULT_FEATURES = ("teacher_ppl", "baseline_ppl", "zlib_entropy", "teacher_baseline_kld")
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class ClassifierConfig:
    features: tuple[str, ...] = DEFAULT_FEATURES
    label: str = "student_memorized"
    trials: int = 100
    ratio: int = 3
    """Negatives per positive in each trial."""
    test_size: float = 0.3
    seed: int = 0
    threshold: float = 0.5
    """Risk at or above which an example is predicted memorized (and excluded by the filter)."""


@dataclass
class ClassifierResult:
    config: ClassifierConfig
    trials: pd.DataFrame
    """One row per trial: trial, n_train, n_test, n_positive, n_negative and the METRICS."""
    coefficients: pd.DataFrame
    """trial, feature, value (standardized coefficient)."""
    risk: pd.DataFrame
    """example_id, risk, predicted for every example of the input (risk NaN where a feature is missing)."""
    dropped: int = 0
    """Examples left out of training because a feature was missing."""
    summary: pd.DataFrame = field(init=False)
    """kind (metric | coefficient), name, mean, std (ddof 1), n_trials."""

    def __post_init__(self) -> None:
        self.summary = summarize(self.trials, self.coefficients)


def model() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def trial_sample(
    positives: np.ndarray, negatives: np.ndarray, trial: int, *, seed: int = 0, ratio: int = 3
) -> tuple[np.ndarray, int]:
    """Row indices of one trial's sample (all positives, then its negatives) and the split's seed."""
    rng = np.random.default_rng([seed, trial])
    n_neg = min(len(negatives), ratio * len(positives))
    neg = np.sort(rng.choice(negatives, size=n_neg, replace=False))
    return np.concatenate([positives, neg]), int(rng.integers(2**31 - 1))


def _metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Test metrics from the confusion counts (sklearn's definitions, zero where undefined)."""
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())
    return {
        "accuracy": (tp + tn) / len(y),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": float(roc_auc_score(y, proba)) if 0 < y.sum() < len(y) else float("nan"),
    }


def run_classifier(df: pd.DataFrame, config: ClassifierConfig | None = None) -> ClassifierResult:
    """Run the trials and score every example of `df` (a `features.features` frame, or any frame with
    example_id, the feature columns and a boolean label column)."""
    # Hundreds of tiny fits: BLAS threads only contend with each other (10x slower on a busy machine).
    with threadpool_limits(limits=1):
        return _run(df, config or ClassifierConfig())


def _run(df: pd.DataFrame, cfg: ClassifierConfig) -> ClassifierResult:
    missing = [c for c in (*cfg.features, cfg.label, "example_id") if c not in df.columns]
    if missing:
        raise ValueError(
            f"classifier: columns {missing} are not in the features table; have {list(df.columns)}"
        )
    x_all = df[list(cfg.features)].to_numpy(dtype=float)
    empty = [f for f, ok in zip(cfg.features, np.isfinite(x_all).any(axis=0), strict=True) if not ok]
    if empty:
        raise ValueError(
            f"classifier: feature(s) {empty} have no values for this job (is example_kld filled?); "
            "compute them or leave them out of the classifier's features"
        )
    usable = np.isfinite(x_all).all(axis=1)
    x, y = x_all[usable], df[cfg.label].to_numpy(dtype=bool)[usable]
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if len(pos) < 2 or len(neg) < 2:
        raise ValueError(
            f"classifier: need at least 2 positive ({cfg.label}) and 2 negative examples, "
            f"have {len(pos)} and {len(neg)}"
        )
    rows, coefs, seen = [], [], np.zeros(len(y), dtype=bool)
    for t in range(cfg.trials):
        idx, split_seed = trial_sample(pos, neg, t, seed=cfg.seed, ratio=cfg.ratio)
        seen[idx] = True
        tr, te = train_test_split(idx, test_size=cfg.test_size, random_state=split_seed, stratify=y[idx])
        m = model().fit(x[tr], y[tr])
        proba = m.predict_proba(x[te])[:, 1]
        rows.append(
            {
                "trial": t,
                "n_train": len(tr),
                "n_test": len(te),
                "n_positive": len(pos),
                "n_negative": len(idx) - len(pos),
                **_metrics(y[te], m.predict(x[te]).astype(bool), proba),
            }
        )
        lr: LogisticRegression = m[-1]
        coefs += [
            {"trial": t, "feature": f, "value": float(v)}
            for f, v in zip(cfg.features, lr.coef_[0], strict=True)
        ]
    risk = np.full(len(df), np.nan)
    risk[usable] = risk_model(x, y, seen, cfg.ratio).predict_proba(x)[:, 1]
    risk_df = pd.DataFrame(
        {"example_id": df["example_id"].to_numpy(), "risk": risk, "predicted": risk >= cfg.threshold}
    )
    return ClassifierResult(cfg, pd.DataFrame(rows), pd.DataFrame(coefs), risk_df, int((~usable).sum()))


def risk_model(x: np.ndarray, y: np.ndarray, seen: np.ndarray, ratio: int) -> Pipeline:
    """Fit on every example some trial sampled; negatives weighted to keep the trials' 1:ratio prior."""
    n_pos, n_neg = int((y & seen).sum()), int((~y & seen).sum())
    w_neg = min(1.0, ratio * n_pos / n_neg) if n_neg else 1.0
    weights = np.where(y[seen], 1.0, w_neg)
    return model().fit(x[seen], y[seen], logisticregression__sample_weight=weights)


def summarize(trials: pd.DataFrame, coefficients: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over trials, as the classifier_summary view computes it (sample std)."""
    rows = [
        {
            "kind": "metric",
            "name": m,
            "mean": trials[m].mean(),
            "std": trials[m].std(),
            "n_trials": int(trials[m].notna().sum()),
        }
        for m in METRICS
    ]
    for f, vals in coefficients.groupby("feature", sort=False)["value"]:
        rows.append(
            {"kind": "coefficient", "name": f, "mean": vals.mean(), "std": vals.std(), "n_trials": len(vals)}
        )
    return pd.DataFrame(rows)


def to_arrow(result: ClassifierResult, run_id: int, dataset_id: int) -> dict[str, pa.Table]:
    """The classifier_trials, classifier_coefficients and example_risk rows of one classifier run."""
    t = result.trials
    trials = pa.table(
        {"run_id": pa.array(np.full(len(t), run_id), pa.int32()), "trial": pa.array(t["trial"], pa.int32())}
        | {c: pa.array(t[c], pa.int32()) for c in ("n_train", "n_test", "n_positive", "n_negative")}
        | {m: pa.array(t[m], pa.float64(), from_pandas=True) for m in METRICS}
    )
    c = result.coefficients
    coefs = pa.table(
        {
            "run_id": pa.array(np.full(len(c), run_id), pa.int32()),
            "trial": pa.array(c["trial"], pa.int32()),
            "feature": pa.array(c["feature"], pa.string()),
            "value": pa.array(c["value"], pa.float64()),
        }
    )
    r = result.risk
    risk = pa.table(
        {
            "run_id": pa.array(np.full(len(r), run_id), pa.int32()),
            "example_id": pa.array(r["example_id"], pa.int64()),
            "dataset_id": pa.array(np.full(len(r), dataset_id), pa.int32()),
            "risk": pa.array(r["risk"], pa.float64(), from_pandas=True),
            "predicted": pa.array(r["predicted"], pa.bool_()),
        }
    )
    return {"classifier_trials": trials, "classifier_coefficients": coefs, "example_risk": risk}
