"""Hostile specs refused at validation (issue 18): exit 2 naming the file and the field, nothing written.

Preset `config:` keys and values, finite floats, seeds in [0, 2**32), strict types, repeated YAML keys,
alias bombs, and job files that are not UTF-8, not regular or not readable.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import yaml

from kdplatform.cli import main
from kdplatform.spec import MAX_SPEC_BYTES, SpecError, load_spec
from kdplatform.spec.sections import CONFIG_FIELDS, PLATFORM_FIELDS, PRESET_CONFIGS

SMOKE = Path(__file__).resolve().parents[2] / "jobs" / "smoke.yaml"


def smoke() -> dict:
    return yaml.safe_load(SMOKE.read_text())


def refused(tmp_path: Path, capsys, doc: dict | str | bytes) -> str:
    """`kdplatform run` of `doc`: asserts exit 2 with nothing written, returns stderr."""
    path = tmp_path / "job.yaml"
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    workdir = tmp_path / "work"
    assert main(["run", str(path), "--workdir", str(workdir)]) == 2
    assert not workdir.exists(), "nothing may be written for a bad spec"
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    return err


def teacher_config(**over) -> dict:
    doc = smoke()
    doc["teacher"]["model"]["config"].update(over)
    return doc


def test_config_typo_names_the_key_and_the_nearest_field(tmp_path, capsys):
    err = refused(tmp_path, capsys, teacher_config(num_hiden_layers=3))
    assert "teacher.model" in err and "num_hiden_layers" in err and "'num_hidden_layers'" in err


@pytest.mark.parametrize(
    "over, expect",
    [
        ({"hidden_size": 0}, "hidden_size: must be a positive integer"),
        ({"num_hidden_layers": -1}, "num_hidden_layers: must be a positive integer"),
        ({"intermediate_size": "256"}, "intermediate_size: must be a positive integer"),
        ({"num_attention_heads": True}, "num_attention_heads: must be a positive integer"),
        ({"num_attention_heads": 5}, "num_attention_heads (5) must divide hidden_size (96)"),
        ({"hidden_dropout": 1.5}, "hidden_dropout: must be a number in [0, 1)"),
        ({"layer_norm_eps": float("inf")}, "layer_norm_eps: must be a positive finite number"),
        ({"vocab_size": 10}, "vocab_size: set by the platform"),
        ({"rope_parameters": {"rope_theta": float("inf")}}, "rope_parameters: must hold finite numbers"),
    ],
)
def test_config_values_are_checked(tmp_path, capsys, over, expect):
    err = refused(tmp_path, capsys, teacher_config(**over))
    assert "teacher.model" in err and expect in err


def test_config_on_a_named_model_is_refused(tmp_path, capsys):
    doc = smoke()
    doc["teacher"]["model"] = {"name": "EleutherAI/pythia-14m", "config": {"num_hidden_layers": 1}}
    assert "a `name` model keeps its checkpoint's" in refused(tmp_path, capsys, doc)


def test_config_fields_are_gptneox_fields():
    """CONFIG_FIELDS (checked without torch) stays in step with the installed GPTNeoXConfig."""
    from transformers import GPTNeoXConfig, PretrainedConfig

    own = set(inspect.signature(GPTNeoXConfig.__init__).parameters)
    generic = set(inspect.signature(PretrainedConfig.__init__).parameters)
    assert set(CONFIG_FIELDS) <= own
    assert own - generic - {"self", "kwargs"} <= set(CONFIG_FIELDS) | set(PLATFORM_FIELDS)


def test_every_accepted_config_field_builds():
    from kdplatform.models import build_preset

    over = dict(hidden_act="relu", attention_dropout=0.1, hidden_dropout=0.1, classifier_dropout=0.1,
                initializer_range=0.01, layer_norm_eps=1e-6, use_cache=False, attention_bias=False,
                bos_token_id=0, eos_token_id=1, pad_token_id=None, rope_parameters={"rope_theta": 500.0},
                num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32)  # fmt: skip
    assert set(over) == set(CONFIG_FIELDS)
    model = build_preset("tiny-student", 64, 64, over)
    assert model.config.hidden_act == "relu" and model.config.num_hidden_layers == 1
    assert set(PRESET_CONFIGS) == {"tiny-teacher", "tiny-student"}


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["teacher"]["train"].update(lr=float("inf")), "teacher.train.lr"),
        (lambda d: d["student"]["distill"].update(temperature=[float("inf")]), "student.distill.temperature"),
        (lambda d: d["student"]["distill"].update(alpha=float("nan")), "student.distill.alpha"),
        (lambda d: d["baseline"]["train"].update(weight_decay=float("inf")), "baseline.train.weight_decay"),
        (lambda d: d["classifier"].update(threshold=float("nan")), "classifier.threshold"),
    ],
)
def test_non_finite_floats_are_refused(tmp_path, capsys, mutate, field):
    doc = smoke()
    mutate(doc)
    err = refused(tmp_path, capsys, doc)
    assert field in err and "finite" in err


@pytest.mark.parametrize(
    "seeds",
    [[True], ["0"], [-1], [2**70], [2**32], [0.0]],
    ids=["bool", "str", "neg", "2**70", "2**32", "float"],
)
def test_seeds_are_ints_in_range(tmp_path, capsys, seeds):
    doc = smoke()
    doc["seeds"] = seeds
    assert "seeds.0" in refused(tmp_path, capsys, doc)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["data"].update(seed=-1), "data.seed"),
        (lambda d: d["classifier"].update(seed=2**40), "classifier.seed"),
        (lambda d: d["teacher"]["train"].update(epochs=True), "teacher.train.epochs"),
        (lambda d: d["teacher"]["train"].update(epochs="3"), "teacher.train.epochs"),
        (lambda d: d["teacher"]["train"].update(lr="1e-3"), "teacher.train.lr"),
        (lambda d: d["teacher"]["train"].update(bf16="yes"), "teacher.train.bf16"),
        (lambda d: d["scan"].update(kld=1), "scan.kld"),
    ],
)
def test_no_coercion(tmp_path, capsys, mutate, field):
    doc = smoke()
    mutate(doc)
    assert field in refused(tmp_path, capsys, doc)


def test_an_int_is_still_a_float(tmp_path):
    doc = smoke()
    doc["teacher"]["train"]["lr"] = 1
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_spec(path).teacher.train.lr == 1.0


@pytest.mark.parametrize(
    "text, key, line",
    [
        ("name: a\nname: b\n", "'name'", 2),
        ("name: a\ndata:\n  seq_len: 40\n  seq_len: 80\n", "'seq_len'", 4),
        ("name: a\nteacher: {model: {preset: tiny-teacher, preset: tiny-student}}\n", "'preset'", 2),
    ],
)
def test_repeated_yaml_keys_are_refused(tmp_path, capsys, text, key, line):
    err = refused(tmp_path, capsys, text)
    assert f"key {key} given twice" in err and f"line {line}" in err


def test_merge_keys_still_override(tmp_path):
    """A `<<:` merge is not a repeated key: its keys are defaults the mapping's own keys override."""
    train = "train: {epochs: 25, batch_size: 16, lr: 1.0e-2}"
    text = SMOKE.read_text().replace(train, train.replace("train:", "train: &t"), 1)
    path = tmp_path / "job.yaml"
    path.write_text(text.replace(train, "train: {<<: *t, epochs: 3}", 1))
    spec = load_spec(path)
    assert (spec.baseline.train.epochs, spec.baseline.train.lr) == (3, 1.0e-2)


def bomb(levels: int) -> str:
    """A billion-laughs document: 10**levels strings from levels + 1 short lines."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "name: bomb\nteacher:\n  model:\n    preset: tiny-teacher\n    config:\n" + "".join(
        f"      {line}\n" for line in lines
    )


def test_alias_bomb_is_refused_by_size(tmp_path, capsys):
    """9 levels expand to 10**9 strings: refused after counting each distinct node once (no timing
    assertion: the count is linear in the document's ~100 nodes by construction)."""
    err = refused(tmp_path, capsys, bomb(9))
    assert f"{MAX_SPEC_BYTES:,}-byte limit" in err


def test_recursive_alias_is_refused(tmp_path, capsys):
    assert "recursive alias" in refused(tmp_path, capsys, "name: a\nseeds: &s [0, *s]\n")


def test_non_utf8_spec(tmp_path, capsys):
    err = refused(tmp_path, capsys, SMOKE.read_bytes().replace(b"# The tiny", b"# The \xff tiny"))
    assert "not UTF-8" in err and "line 1" in err


def test_oversized_spec_file(tmp_path, capsys):
    assert "byte limit" in refused(tmp_path, capsys, "# " + "x" * MAX_SPEC_BYTES + "\nname: a\n")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_spec_that_is_not_a_regular_file(tmp_path, capsys, kind):
    path = tmp_path / "job.yaml"
    path.mkdir() if kind == "directory" else os.mkfifo(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "regular file" in err


def test_spec_symlink_to_a_device(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.symlink_to("/dev/zero")
    assert main(["validate", str(path)]) == 2
    assert "regular file" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file")
def test_unreadable_spec(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(SMOKE.read_text())
    path.chmod(0)
    assert main(["validate", str(path)]) == 2
    assert "cannot read the job file" in capsys.readouterr().err


def test_missing_spec_still_named(tmp_path):
    with pytest.raises(SpecError, match="no such job file"):
        load_spec(tmp_path / "nope.yaml")
