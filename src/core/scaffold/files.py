"""Writing generated files: never over a file someone may have edited, unless asked to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.scaffold.errors import ScaffoldError


@dataclass(slots=True)
class WriteReport:
    """What `write_files` did with each file, by path relative to the root."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per file, for the CLI to print."""
        return [
            *(f"wrote {name}" for name in self.written),
            *(f"unchanged {name}" for name in self.unchanged),
            *(
                f"skipped {name}: it exists and differs (--force overwrites it)"
                for name in self.skipped
            ),
        ]


def write_files(
    root: Path,
    files: Mapping[str, str],
    *,
    force: bool = False,
) -> WriteReport:
    """Write `files` (relative path -> text) under `root`.

    A file that exists with other content is left alone unless `force`; one with the same
    content is reported unchanged.

    Raises:
        ScaffoldError: a path is taken by a directory, or cannot be written.
    """
    report = WriteReport()
    for name, text in files.items():
        path = root / name
        if path.is_dir():
            raise ScaffoldError(f"Cannot write {name}: a directory has that name.")
        if path.exists():
            if _read(path) == text:
                report.unchanged.append(name)
                continue
            if not force:
                report.skipped.append(name)
                continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ScaffoldError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        report.written.append(name)
    return report


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
