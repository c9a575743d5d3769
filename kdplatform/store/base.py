"""The declarative base every table of the schema derives from: one metadata with a naming convention,
and the column types and id sequences all tables share (DuckDB has no autoincrement)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Integer, MetaData, Sequence, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {str: String(), datetime: DateTime(), int: Integer(), float: Float()}


def _id(name: str) -> Mapped[int]:
    return mapped_column(Integer, Sequence(f"{name}_id_seq"), primary_key=True)
