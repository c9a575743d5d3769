"""Datasets of the local test tasks, read from the JSONL files beside this module (lm-eval resolves a
task's `!function` against its YAML's folder, so the tasks work from any directory and never download)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _jsonl(name: str):
    import datasets

    return datasets.load_dataset("json", data_files={"test": str(HERE / name)})


def lambada(**_: object):
    """LAMBADA-style passages: predict each one's last word."""
    return _jsonl("tiny_lambada.jsonl")


def winogrande(**_: object):
    """Winogrande-style sentences: which of two options fills the blank."""
    return _jsonl("tiny_winogrande.jsonl")


def wino_choices(doc: dict) -> list[str]:
    """The sentence up to the blank, completed by each option (as lm-eval's winogrande task)."""
    i = doc["sentence"].index("_")
    return [doc["sentence"][:i] + doc["option1"], doc["sentence"][:i] + doc["option2"]]


def wino_target(doc: dict) -> str:
    """The sentence after the blank, scored after each completed context."""
    return doc["sentence"][doc["sentence"].index("_") + 1 :].strip()


def wino_label(doc: dict) -> int:
    return {"1": 0, "2": 1}[doc["answer"]]
