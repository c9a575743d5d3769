"""Reading a job file as untrusted input: a regular, readable, UTF-8 file of bounded size, YAML without
repeated keys, and bounded after alias expansion, so a hostile file is refused in milliseconds with a
message instead of a traceback, a silently dropped key, or megabytes of config in the database.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from kdplatform.spec.sections import SpecError

MAX_SPEC_BYTES = 1_000_000
"""The largest job file read, and the largest it may grow to as JSON once YAML aliases are expanded."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is None:
                seen[key] = key_node.start_mark.line + 1
            else:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice (first on line {first}); a repeated key would silently "
                    "replace the first",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path) -> str:
    """The file's text; SpecError for a missing, non-regular, unreadable, too large or non-UTF-8 file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such job file") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read the job file: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise SpecError(f"{path}: a job file must be a regular file; this is {kind}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise SpecError(f"{path}: cannot read the job file: {e.strerror or e}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: larger than the {MAX_SPEC_BYTES:,}-byte limit of a job file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: not UTF-8 text (byte {e.start}, line {line}: {data[e.start : e.start + 1]!r}); "
            "save the job file as UTF-8"
        ) from None


def expanded_size(obj: Any, limit: int) -> int:
    """About how many bytes `obj` takes as JSON with every shared (aliased) node written out, counted
    in time linear in the distinct nodes and stopped past `limit`; ValueError for a recursive alias."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(o: Any) -> int:
        if not isinstance(o, dict | list):
            return len(json.dumps(o, default=str))
        if id(o) in sizes:
            return sizes[id(o)]
        if id(o) in open_:
            raise ValueError("a recursive alias (a node that contains itself)")
        open_.add(id(o))
        items = [*o.keys(), *o.values()] if isinstance(o, dict) else o
        total = 2
        for item in items:
            total += size(item) + 1
            if total > limit:
                break
        open_.discard(id(o))
        sizes[id(o)] = total
        return total

    return size(obj)


def parse(text: str, path: Path) -> Any:
    """The YAML document of a job file; SpecError naming the file for invalid YAML, a repeated key, a
    recursive alias, or a document that expands past MAX_SPEC_BYTES."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    except RecursionError:
        raise SpecError(f"{path}: not valid YAML: nested too deeply") from None
    try:
        n = expanded_size(raw, MAX_SPEC_BYTES)
    except (ValueError, RecursionError) as e:
        msg = str(e) if isinstance(e, ValueError) else "nested too deeply"
        raise SpecError(f"{path}: not a valid job spec: {msg}") from None
    if n > MAX_SPEC_BYTES:
        raise SpecError(
            f"{path}: the spec expands (YAML aliases written out) past the {MAX_SPEC_BYTES:,}-byte limit "
            "of a job spec; a real job is a few kilobytes"
        )
    return raw
