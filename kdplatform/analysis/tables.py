"""ORM classes of the analysis results (migration 0002), on the store's Base so that alembic's metadata
comparison covers them. Rows are written in bulk from the Arrow tables of classifier.to_arrow."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kdplatform.store.schema import Base


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
