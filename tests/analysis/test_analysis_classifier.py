"""The memorization classifier against a direct scikit-learn computation, and its stored rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from kdplatform.analysis import classifier_results, features, filtering
from kdplatform.analysis.classifier import DEFAULT_FEATURES, METRICS, ClassifierConfig, run_classifier


def test_trial_zero_equals_direct_sklearn(classified):
    features, result, _ = classified
    x = features[list(DEFAULT_FEATURES)].to_numpy(dtype=float)
    y = features.student_memorized.to_numpy()
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    rng = np.random.default_rng([3, 0])  # the documented draw: negatives, then the split's seed
    sample = np.concatenate([pos, np.sort(rng.choice(neg, size=3 * len(pos), replace=False))])
    train, test = train_test_split(
        sample, test_size=0.3, random_state=int(rng.integers(2**31 - 1)), stratify=y[sample]
    )
    scaler = StandardScaler().fit(x[train])
    lr = LogisticRegression(max_iter=1000).fit(scaler.transform(x[train]), y[train])
    proba = lr.predict_proba(scaler.transform(x[test]))[:, 1]
    pred = lr.predict(scaler.transform(x[test]))
    t0 = result.trials.iloc[0]
    assert (t0.n_train, t0.n_test, t0.n_positive, t0.n_negative) == (
        len(train),
        len(test),
        len(pos),
        3 * len(pos),
    )
    assert t0.accuracy == pytest.approx(accuracy_score(y[test], pred))
    assert t0.precision == pytest.approx(precision_score(y[test], pred))
    assert t0.recall == pytest.approx(recall_score(y[test], pred))
    assert t0.f1 == pytest.approx(f1_score(y[test], pred))
    assert t0.roc_auc == pytest.approx(roc_auc_score(y[test], proba))
    coef = result.coefficients[result.coefficients.trial == 0].set_index("feature").value
    assert coef[list(DEFAULT_FEATURES)].to_numpy() == pytest.approx(lr.coef_[0])


def test_shapes_ranges_and_summary(classified):
    features, result, _ = classified
    assert list(result.trials.trial) == list(range(100))
    assert result.coefficients.shape == (400, 3)
    assert ((result.trials[list(METRICS)] >= 0) & (result.trials[list(METRICS)] <= 1)).all().all()
    assert result.trials.roc_auc.mean() > 0.7  # the generated features carry the latent difficulty
    assert (result.trials.n_test == result.trials.n_test.iloc[0]).all()
    s = result.summary.set_index("name")
    assert s.loc["f1", "mean"] == pytest.approx(result.trials.f1.mean())
    assert s.loc["f1", "std"] == pytest.approx(np.std(result.trials.f1, ddof=1))
    zc = result.coefficients[result.coefficients.feature == "zlib_entropy"].value
    assert s.loc["zlib_entropy", "mean"] == pytest.approx(zc.mean())
    assert s.loc["zlib_entropy", "mean"] < 0  # lower entropy, more memorization
    risk = result.risk
    assert list(risk.example_id) == list(features.example_id)
    assert risk.risk.between(0, 1).all()
    assert (risk.predicted == (risk.risk >= 0.6)).all()
    assert result.dropped == 0


def test_stored_rows_and_summary_view(study, classified):
    _, result, run_id = classified
    job = study.jobs["alpha"]
    assert classifier_results.classifier_runs(study.engine, job) == [run_id]
    view = classifier_results.classifier_summary(study.engine, job)
    assert list(view.name[:5]) == list(METRICS)
    assert len(view) == 5 + len(DEFAULT_FEATURES)
    merged = view.merge(result.summary, on=["kind", "name"], suffixes=("_sql", "_py"))
    assert len(merged) == len(view)
    assert merged.mean_sql.to_numpy() == pytest.approx(merged.mean_py.to_numpy())
    assert merged.std_sql.to_numpy() == pytest.approx(merged.std_py.to_numpy())
    assert (merged.n_trials_sql == 100).all()
    assert len(classifier_results.classifier_trials(study.engine, run_id)) == 100
    risk = classifier_results.example_risk(study.engine, job)
    assert len(risk) == 240 and risk.predicted.sum() == result.risk.predicted.sum()
    stored = filtering.stored_exclusion(study.engine, job)
    assert stored.tolist() == filtering.exclusion_set(result.risk, 0.6).tolist()
    assert filtering.stored_exclusion(study.engine, job, threshold=0.0).tolist() == sorted(
        result.risk.example_id
    )
    summ = filtering.filtering_summary(study.engine, job)
    before = study.union(study.run_ids("alpha", "student", "forward_kl", 1.0))
    after = study.union(study.run_ids("alpha", "student_filtered"))
    assert summ.n_excluded == len(stored)
    assert summ.n_before_excluded == len(before & set(stored.tolist()))
    assert summ.n_after_excluded == len(after & set(stored.tolist()))


def test_missing_and_invalid_features():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"example_id": np.arange(n), "a": rng.normal(size=n), "b": rng.normal(size=n)})
    df["student_memorized"] = df.a + 0.3 * rng.normal(size=n) < -1
    df.loc[[3, 7], "b"] = np.nan
    res = run_classifier(df, ClassifierConfig(features=("a", "b"), trials=5))
    assert res.dropped == 2 and res.risk.risk.isna().sum() == 2
    assert not res.risk.loc[[3, 7], "predicted"].any()
    assert res.summary.set_index("name").loc["a", "mean"] < 0
    with pytest.raises(ValueError, match=r"\['c'\]"):
        run_classifier(df, ClassifierConfig(features=("a", "c")))
    with pytest.raises(ValueError, match="no values"):
        run_classifier(df.assign(b=np.nan), ClassifierConfig(features=("a", "b")))
    with pytest.raises(ValueError, match="at least 2 positive"):
        run_classifier(df.assign(student_memorized=False), ClassifierConfig(features=("a",)))


def test_gamma_without_kld_names_the_feature(study):
    table = features.features(study.engine, study.jobs["gamma"])
    with pytest.raises(ValueError, match="teacher_baseline_kld"):
        run_classifier(table)
    res = run_classifier(table, ClassifierConfig(features=("teacher_ppl", "zlib_entropy"), trials=3))
    assert len(res.trials) == 3
