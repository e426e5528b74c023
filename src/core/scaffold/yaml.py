"""A small YAML writer for the deployment files: block style, keys in the order given.

Only what those files hold: mappings with string keys, lists, strings, numbers, booleans and
None. A string that plain YAML would read as something else (`yes`, `8000`, `a: b`, ...) is
written double-quoted, in JSON's syntax, which YAML reads as the same string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z_/$][A-Za-z0-9_ ./:@,=+${}()*-]*$")
_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_INDENT = "  "


def dump(document: Any, *, comment: str = "") -> str:
    """One YAML document; `comment` (may span lines) goes first, each line behind `# `."""
    return _comment(comment) + "\n".join(_block(document, 0)) + "\n"


def dump_all(documents: Iterable[Any], *, comment: str = "") -> str:
    """Several documents, separated by `---`."""
    return _comment(comment) + "---\n".join(dump(document) for document in documents)


def _comment(text: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines())


def scalar(value: Any) -> str:
    """How one scalar is written."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if not isinstance(value, str):
        raise TypeError(f"Cannot write {type(value).__name__} as YAML.")
    if _is_plain(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _is_plain(text: str) -> bool:
    return (
        bool(_PLAIN.match(text))
        and text.lower() not in _WORDS
        and text == text.strip()
        and ": " not in text
        and " #" not in text
        and not text.endswith(":")
    )


def _block(value: Any, depth: int) -> list[str]:
    pad = _INDENT * depth
    if isinstance(value, Mapping):
        if not value:
            return [pad + "{}"]
        lines: list[str] = []
        for key, item in value.items():
            lines.extend(_entry(f"{pad}{scalar(str(key))}:", item, depth))
        return lines
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            nested = _block(item, depth + 1)
            # The item's first line moves up beside the dash: "- name: api".
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines.extend(nested[1:])
        return lines
    return [pad + scalar(value)]


def _entry(key: str, item: Any, depth: int) -> list[str]:
    if _is_container(item) and item:
        return [key, *_block(item, depth + 1)]
    if _is_container(item):
        return [f"{key} {'{}' if isinstance(item, Mapping) else '[]'}"]
    return [f"{key} {scalar(item)}"]


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str)
    )
