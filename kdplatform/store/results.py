"""The tables of results beyond a scan's own rows (a split of schema.py, which re-exports them): the
probabilistic-extraction and prefix-length scores, canaries, cross-job scans, the classifier's trials and
risks, and lm-evaluation-harness scores. Filled in bulk like scan_results."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kdplatform.store.base import Base


class CrossScanResult(Base):
    """A model scanned on an example of another job's dataset, re-tokenized by its own tokenizer (0009);
    n_tokens and zlib_bits_per_token are of the source's prefix + suffix text under that tokenizer."""

    __tablename__ = "cross_scan_results"
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    """The scanned model's run (of the scanning job); dataset_id, example_id: the source's example."""
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    text_hash: Mapped[str]
    n_tokens: Mapped[int]
    zlib_bits_per_token: Mapped[float]
    memorized: Mapped[bool] = mapped_column(Boolean)
    match_len: Mapped[int]
    suffix_logprob: Mapped[float]
    suffix_entropy: Mapped[float]
    ppl: Mapped[float]


class ExtractionScore(Base):
    """Probabilistic extraction (migration 0005): the log-probability that one sample at `temperature`
    (from the `top_k` most likely tokens; 0 = the whole vocabulary, as in transformers) reproduces the
    example's suffix from its prefix."""

    __tablename__ = "extraction_scores"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    temperature: Mapped[float] = mapped_column(Float, primary_key=True)
    top_k: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    logprob: Mapped[float]
    """-inf where the suffix cannot be sampled (a true token outside the top k)."""


class PrefixMemorization(Base):
    """Memorization at another prefix length with the same suffix length S (migration 0005): greedy
    decoding from the first `prefix_len` tokens reproduces the S tokens after them. The scan's own prefix
    length (the dataset's) is scan_results.memorized and is not repeated here."""

    __tablename__ = "prefix_memorization"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    prefix_len: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    memorized: Mapped[bool] = mapped_column(Boolean)


class Canary(Base):
    __tablename__ = "canaries"  # migration 0008: one examples row (split `canary`) per canary
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    copies: Mapped[int]
    secret: Mapped[str]


class CanaryResult(Base):
    """A model's greedy extraction and exposure (bits) of a canary's secret, ranked among `alternatives`."""

    __tablename__ = "canary_results"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    memorized: Mapped[bool] = mapped_column(Boolean)
    match_len: Mapped[int]
    suffix_logprob: Mapped[float]
    rank: Mapped[int]
    alternatives: Mapped[int]
    exposure: Mapped[float]


class ClassifierTrial(Base):
    """Test-split metrics of one trial of the memorization classifier; run_id is the classifier stage."""

    __tablename__ = "classifier_trials"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    trial: Mapped[int] = mapped_column(primary_key=True)
    n_train: Mapped[int]
    n_test: Mapped[int]
    n_positive: Mapped[int]
    """Positives (student-memorized) in this trial's sample, train and test together."""
    n_negative: Mapped[int]
    accuracy: Mapped[float]
    precision: Mapped[float]
    recall: Mapped[float]
    f1: Mapped[float]
    roc_auc: Mapped[float | None]
    """None when the test split holds one class only."""


class ClassifierCoefficient(Base):
    """Logistic-regression coefficient of one standardized feature in one trial (Tables 4-7)."""

    __tablename__ = "classifier_coefficients"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    trial: Mapped[int] = mapped_column(primary_key=True)
    feature: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[float]


class ExampleRisk(Base):
    """Predicted probability that the student memorizes an example; `predicted` is risk >= threshold."""

    __tablename__ = "example_risk"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    risk: Mapped[float | None]
    """None when a feature of the example is missing."""
    predicted: Mapped[bool] = mapped_column(Boolean)


class EvalResult(Base):
    """One lm-evaluation-harness metric of a trained model (run_id) on a task (migration 0007), written by
    its eval stage (eval_run_id); `metric` is lm-eval's, `metric,filter` for a filter other than none."""

    __tablename__ = "eval_results"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    task: Mapped[str] = mapped_column(String, primary_key=True)
    num_fewshot: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String, primary_key=True)
    eval_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    value: Mapped[float]
    stderr: Mapped[float | None]
    n_samples: Mapped[int | None]
    """Documents evaluated (after `limit`); NULL for a group's aggregate, as stderr where lm-eval has none."""


class ExampleLoss(Base):
    """A model's loss on one example where the model is not scanned (migration 0011): a base's, the
    reference of the reference attack for the models fine-tuned from it. Written by the base's loss-only
    scan (stage `scan/pretrain/<name>`, scan_run_id), on the members of D and the held-out non-members."""

    __tablename__ = "example_losses"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    """The model's run (the base's pretrain stage)."""
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    loss: Mapped[float]
    """Mean NLL (nats) over the L-1 predicted tokens, as scan_results.loss."""


class ApproximateMemorization(Base):
    """How close the free greedy continuation of an example with a long match comes to its true suffix
    (migration 0011; the optional approximate stage, for members whose match_len reaches
    scan.approximate_min_match)."""

    __tablename__ = "approximate_memorization"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    """The approximate stage's run."""
    match_len: Mapped[int]
    """Leading suffix tokens reproduced (scan_results.match_len of the same model)."""
    token_match: Mapped[float]
    """Share of the S suffix positions where the greedy continuation has the true token."""
    edit_distance: Mapped[float]
    """Levenshtein distance between the continuation's and the suffix's token ids, divided by S."""
