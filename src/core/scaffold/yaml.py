"""YAML for the deployment files, written by PyYAML: block style, keys in the order given."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as compose and Kubernetes files are usually written, and
    a value used twice written twice (no `&id001` anchors for a reader to follow)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(document: Any, *, comment: str = "") -> str:
    """One YAML document; `comment` (may span lines) goes first, each line behind `# `."""
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return _comment(comment) + body


def dump_all(documents: Iterable[Any], *, comment: str = "") -> str:
    """Several documents, separated by `---`."""
    return _comment(comment) + "---\n".join(dump(document) for document in documents)


def _comment(text: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines())
