"""Checks a job can run before it writes anything: models resolvable, one shared tokenizer, a readable
exclusion file of integer ids, lm-eval tasks that exist (evaluation.tasks), a writable workdir
(tracking.check_uri checks the MLflow URI).

A week-long job that would fail at its first distillation step (a typo in a model name, a student with
another tokenizer than its teacher) fails here in seconds, with the field to fix.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from kdplatform.spec import JobSpec, ModelSpec, SpecError


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


def _config(field: str, spec: ModelSpec):
    from transformers import AutoConfig

    name = spec.name
    if _looks_local(name) and not Path(name).expanduser().exists():
        raise SpecError(f"{field}.name: local model path {name!r} does not exist; fix the path")
    try:
        return AutoConfig.from_pretrained(
            str(Path(name).expanduser()) if _looks_local(name) else name, revision=spec.revision
        )
    except Exception as e:
        raise SpecError(
            f"{field}.name: cannot load model {name!r}"
            f"{f' at revision {spec.revision!r}' if spec.revision else ''}: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''} (check the name, the path, or the network)"
        ) from None


def _vocab(field: str, name: str, revision: str | None) -> dict[str, int]:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, revision=revision).get_vocab()
    except Exception as e:
        raise SpecError(f"{field}: cannot load the tokenizer of {name!r}: {type(e).__name__}: {e}") from None


def check(spec: JobSpec, path: str | Path = "job") -> None:
    """Raise SpecError (naming `path` and the field) for models or tokenizers the job cannot use."""
    try:
        _check(spec)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


def exclusion_ids(exclude: str):
    """The example ids of `filtered_student.exclude: file:PATH`: one non-negative integer a line (blank
    lines and `#` comments skipped), as preflight and the stage both read them; SpecError naming the
    field, the file and the line for a file that is missing, unreadable or not such integers."""
    import numpy as np

    path = Path(exclude.removeprefix("file:"))
    where = f"filtered_student.exclude: {str(path)!r}"
    if path.exists() and not path.is_file():
        raise SpecError(f"{where} is not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        raise SpecError(f"{where}: cannot read example ids (one integer a line): {why}") from None
    ids = []
    for lineno, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if not item.isdecimal() or not item.isascii() or int(item) >= 2**63:
            raise SpecError(
                f"{where}, line {lineno}: {item[:40]!r} is not an example id (one integer >= 0 a line)"
            )
        ids.append(int(item))
    return np.array(ids, dtype=np.int64)


def check_workdir(workdir: Path) -> None:
    """The workdir is a directory this process can create and write files in: SpecError naming it (and
    the OS's reason) before the database, the lock or any data file is made there."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise SpecError(f"workdir {workdir}: exists and is not a directory; choose another with --workdir")
    above = next((p for p in workdir.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise SpecError(
            f"workdir {workdir}: {above} is a file, not a directory; choose another with --workdir"
        )
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as e:
        raise SpecError(
            f"workdir {workdir}: not writable ({e.strerror or e}); choose another with --workdir"
        ) from None


def _activations(spec: JobSpec) -> None:
    """A preset's `config.hidden_act` names an activation transformers has (the spec checks the rest)."""
    models = {f"{r}.model": rs.model for r, rs in spec.roles().items()}
    models |= {
        f"pretrain.bases.{b}.model": bs.model
        for b, bs in (spec.pretrain.bases if spec.pretrain else {}).items()
    }
    acts = {field: m.config["hidden_act"] for field, m in models.items() if "hidden_act" in m.config}
    if not acts:
        return
    from transformers.activations import ACT2FN

    for field, act in acts.items():
        if act not in ACT2FN:
            raise SpecError(
                f"{field}.config.hidden_act: unknown activation {act!r}; one of: {', '.join(ACT2FN)}"
            )


def _check(spec: JobSpec) -> None:
    fs = spec.filtered_student
    if fs is not None and fs.exclude.startswith("file:"):
        exclusion_ids(fs.exclude)
    if spec.eval is not None:
        from kdplatform.evaluation.tasks import check_tasks

        check_tasks(spec.eval)
    _activations(spec)
    roles = {r: rs for r, rs in spec.roles().items() if r != "filtered_student"}
    # A `base: NAME` is checked as the base's own model; its errors name the base's field.
    fields = {
        r: f"pretrain.bases.{rs.model.base}.model" if rs.model.base else f"{r}.model"
        for r, rs in roles.items()
    }
    named = {r: spec.model_of(rs.model) for r, rs in roles.items() if spec.model_of(rs.model).name}
    configs = {r: _config(fields[r], m) for r, m in named.items()}
    for b, base in spec.pretrain.bases.items() if spec.pretrain else ():
        if base.model.name and f"pretrain.bases.{b}.model" not in {fields[r] for r in named}:
            _config(f"pretrain.bases.{b}.model", base.model)
    tok = spec.data.tokenizer
    vocabs: dict[str, dict[str, int]] = {}
    if tok.name:
        vocabs["data.tokenizer"] = _vocab("data.tokenizer.name", tok.name, tok.revision)
    for role in ("teacher", "student", "hard_student"):
        if role in named:
            vocabs[fields[role]] = _vocab(f"{fields[role]}.name", named[role].name, named[role].revision)
    items = list(vocabs.items())
    for (a, va), (b, vb) in zip(items, items[1:], strict=False):
        if va != vb:
            raise SpecError(
                f"{a} and {b} use different tokenizers ({len(va)} vs {len(vb)} tokens); distillation "
                "compares distributions token by token, so teacher and students must share one tokenizer"
            )
    if tok.name:
        n = len(vocabs["data.tokenizer"])
        for role, cfg in configs.items():
            width = getattr(cfg, "vocab_size", None)
            if width is not None and width < n:
                raise SpecError(
                    f"{fields[role]}: {named[role].name!r} has {width} embeddings but the tokenizer has {n} "
                    "tokens; use the model family's tokenizer"
                )
