"""The CPU analogue of the paper's cross-family study (issue 19): three tiny families trained on the same
offline texts, each with its own locally trained tokenizer, in one database.

- `neox`: GPT-NeoX presets (the Pythia architecture), its BPE trained by the data stage;
- `neox-small`: the same data section (so the same dataset row and texts) and neox's teacher used as it
  is (by path), with a smaller baseline: the scale hierarchy across jobs;
- `llama` and `qwen2`: LlamaForCausalLM and Qwen2ForCausalLM built here and named by path, as hub models
  are, each with a BPE trained here on the same documents (other vocabulary sizes: other windows).

Their `cross_scan:` sections scan each family's models on the others' texts. `neox` runs first, and its
cross-scans fail (the other jobs are not there yet); after the others it runs again and only those run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DATA: dict[str, Any] = {
    "num_examples": 32,
    "val_examples": 8,
    "heldout_examples": 0,
    "seq_len": 16,
    "prefix_len": 8,
    "train_len": 32,  # as the paper's 256 and 100: longer texts than the tested window, so that
    # another tokenizer's first seq_len tokens of a text lie within it
    "max_corpus_chars": 60000,
}
TRAIN = {"epochs": 24, "batch_size": 8, "lr": 5.0e-3, "warmup_ratio": 0.0, "checkpoint_every": None}
SCAN = {"store_greedy_min_match": None, "audit_sample": 0}
BUILT = {"llama": ("LlamaConfig", "LlamaForCausalLM", 400), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", 500)}


def _neox(hidden: int, layers: int = 1) -> dict[str, Any]:
    size = {"num_hidden_layers": layers, "hidden_size": hidden, "intermediate_size": 2 * hidden}
    return {"preset": "tiny-student", "config": size | {"num_attention_heads": 2}}


def _texts(root: Path) -> list[str]:
    """The offline texts every job reads: the builtin corpus's first documents (shuffled by seed 0) as a
    `files:` corpus, so the standard library is parsed once, not by every data stage."""
    import json

    from kdplatform.data.corpus import load_documents

    docs = load_documents("builtin", max_chars=DATA["max_corpus_chars"], seed=0)
    (root / "texts.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return docs


def _built(family: str, root: Path, hidden: int, docs: list[str]) -> tuple[str, str]:
    """(model path, tokenizer path) of a tiny random model of `family` and its own BPE on the same texts."""
    import torch
    import transformers

    from kdplatform.data.examples import train_tokenizer

    config_cls, model_cls, vocab = BUILT[family]
    tok_dir = root / f"{family}-tokenizer"
    if not tok_dir.exists():
        train_tokenizer(docs, vocab, tok_dir)
    tok = transformers.AutoTokenizer.from_pretrained(tok_dir)
    cfg = getattr(transformers, config_cls)(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(hidden)
    path = root / f"{family}-{hidden}"
    getattr(transformers, model_cls)(cfg).save_pretrained(path)
    tok.save_pretrained(path)  # a hub model's directory holds its tokenizer
    return str(path), str(tok_dir)


def _job(name: str, teacher: dict, small: dict, data: dict, cross: dict | None, **over: Any) -> dict:
    job = {
        "name": name,
        "seeds": [0],
        "data": data,
        "teacher": {"model": teacher, "train": TRAIN},
        "baseline": {"model": small, "train": TRAIN},
        "student": {"model": small, "train": TRAIN | {"epochs": 4}},
        "scan": SCAN,
    }
    if cross is not None:
        job["cross_scan"] = cross
    return job | over


@dataclass
class Families:
    """The four jobs' runners on one database, the error neox's first cross-scan stopped with, and what
    its second run said."""

    url: str
    runners: dict[str, Any]
    first_error: Exception
    rerun_said: list[str]


@pytest.fixture(scope="session")
def families(tmp_path_factory) -> Families:
    from kdplatform.pipeline import JobRunner
    from kdplatform.spec import JobSpec

    root = tmp_path_factory.mktemp("families")
    url = f"duckdb:///{root / 'kdp.duckdb'}"
    tracking = f"sqlite:///{root / 'mlflow.db'}"  # one MLflow store: its tables are made once
    docs = _texts(root)
    data = DATA | {"source": f"files:{root / 'texts.jsonl'}"}
    specs = {
        "neox": _job(
            "neox",
            _neox(48, 2),
            _neox(32),
            data | {"tokenizer": {"vocab_size": 300}},
            {"jobs": ["llama", "qwen2"], "examples": "all"},
        )
    }
    teacher = {"name": str(root / "neox" / "checkpoints" / "train-teacher")}
    specs["neox-small"] = _job("neox-small", teacher, _neox(16), specs["neox"]["data"], None) | {
        "teacher": {"model": teacher, "train": None}
    }
    for family, cross in (
        ("llama", {"jobs": ["neox"], "roles": ["teacher", "baseline"]}),
        ("qwen2", {"jobs": ["neox", "llama"], "examples": "all"}),
    ):
        big, tok = _built(family, root, 48, docs)
        small, _ = _built(family, root, 32, docs)
        specs[family] = _job(
            family, {"name": big}, {"name": small}, data | {"tokenizer": {"name": tok}}, cross
        )

    def runner(name: str, echo) -> Any:
        spec = JobSpec.model_validate(specs[name])
        return JobRunner(spec, root / name, database_url=url, tracking_uri=tracking, echo=echo)

    runners = {name: runner(name, lambda _: None) for name in specs}
    with pytest.raises(Exception) as first:
        runners["neox"].run()
    for name in ("neox-small", "llama", "qwen2"):
        runners[name].run()
    said: list[str] = []
    runners["neox"] = runner("neox", said.append)
    runners["neox"].run()
    return Families(url, runners, first.value, said)
