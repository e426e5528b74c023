"""A project's Python: finding an interpreter, and installing this framework into a virtualenv.

The framework is not on PyPI, so a project's virtualenv gets the very distribution that runs
`core init`: from the same local directory (editable if it was), the same URL, or else the
same version from the package index. PEP 610's `direct_url.json` says which.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from core.errors import ConfigurationError
from core.scaffold.errors import ScaffoldError

DISTRIBUTION = "core-framework"
MINIMUM_PYTHON = (3, 11)
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, slots=True)
class Interpreter:
    """A Python found on this machine."""

    path: Path
    version: tuple[int, int, int]

    @property
    def short_version(self) -> str:
        """`X.Y`, e.g. `3.13`."""
        return f"{self.version[0]}.{self.version[1]}"

    def __str__(self) -> str:
        return f"Python {'.'.join(map(str, self.version))} ({self.path})"


def parse_python_version(text: str) -> tuple[int, ...]:
    """`"3.13"` -> `(3, 13)`, `"3.13.1"` -> `(3, 13, 1)`.

    Raises:
        ConfigurationError: not a version, or older than the framework supports.
    """
    match = _VERSION.match(text.strip())
    if match is None:
        raise ConfigurationError(f"--python takes a version such as 3.13 or 3.13.1, got {text!r}.")
    version = tuple(int(part) for part in match.groups() if part is not None)
    if version[:2] < MINIMUM_PYTHON:
        minimum = ".".join(map(str, MINIMUM_PYTHON))
        raise ConfigurationError(f"Core Framework needs Python {minimum} or newer, not {text}.")
    return version


def find_python(requested: str | None = None) -> Interpreter:
    """The interpreter of version `requested` (`X.Y` or `X.Y.Z`); this one when omitted.

    Looks at the running interpreter, `pythonX.Y` on PATH, pyenv's versions and uv's.

    Raises:
        ConfigurationError: the version is malformed, too old, or not installed here.
    """
    if requested is None:
        return Interpreter(Path(sys.executable), _running_version())
    wanted = parse_python_version(requested)
    seen: set[Path] = set()
    for candidate in _candidates(wanted):
        if candidate in seen or not candidate.is_file():
            continue
        seen.add(candidate)
        version = _probe(candidate)
        if version is not None and version[: len(wanted)] == wanted:
            return Interpreter(candidate, version)
    raise ConfigurationError(
        f"Python {requested} is not installed on this machine (looked on PATH, in pyenv and "
        "uv): install it, or pass another --python."
    )


def _running_version() -> tuple[int, int, int]:
    return (sys.version_info.major, sys.version_info.minor, sys.version_info.micro)


def _candidates(wanted: tuple[int, ...]) -> Iterator[Path]:
    short = f"{wanted[0]}.{wanted[1]}"
    if _running_version()[: len(wanted)] == wanted:
        yield Path(sys.executable)
    on_path = shutil.which(f"python{short}")
    if on_path:
        yield Path(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = pyenv_root / "versions"
    if versions.is_dir():
        # Newest patch release first: 3.13.2 before 3.13.0.
        for folder in sorted(versions.glob(f"{short}*"), key=_patch_key, reverse=True):
            yield folder / "bin" / f"python{short}"
    uv = shutil.which("uv")
    if uv:
        found = _output([uv, "python", "find", ".".join(map(str, wanted))])
        if found:
            yield Path(found)


def _patch_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in re.split(r"[.]", folder.name))


def _probe(python: Path) -> tuple[int, int, int] | None:
    # Running it is the only sure test: a pyenv shim exists for versions pyenv will not run.
    out = _output([str(python), "-c", "import sys; print(*sys.version_info[:3])"])
    if out is None:
        return None
    parts = out.split()
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def _output(command: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@dataclass(frozen=True, slots=True)
class FrameworkSource:
    """Where the running core-framework was installed from.

    Attributes:
        version: Its version; empty when unknown (not installed as a distribution).
        directory: The local source directory it was installed from, if any.
        editable: Whether that install was editable (`pip install -e`).
        url: The URL it was installed from (a VCS or archive URL, pip syntax), if any.
    """

    version: str
    directory: Path | None = None
    editable: bool = False
    url: str | None = None

    def requirement(self, extras: Sequence[str] = ()) -> list[str]:
        """The pip/uv arguments that install this same distribution, with `extras`."""
        suffix = f"[{','.join(extras)}]" if extras else ""
        if self.directory is not None:
            target = f"{self.directory}{suffix}"
            return ["-e", target] if self.editable else [target]
        if self.url is not None:
            return [f"{DISTRIBUTION}{suffix} @ {self.url}"]
        pin = f"=={self.version}" if self.version else ""
        return [f"{DISTRIBUTION}{suffix}{pin}"]

    def describe(self) -> str:
        """E.g. `core-framework 0.1.0 (editable, from /src/core-framework)`."""
        if self.directory is not None:
            how = "editable, from" if self.editable else "from"
            return f"{DISTRIBUTION} {self.version} ({how} {self.directory})"
        if self.url is not None:
            return f"{DISTRIBUTION} {self.version} (from {self.url})"
        return f"{DISTRIBUTION} {self.version}"


def installed_framework() -> FrameworkSource:
    """Where this framework came from, read from its PEP 610 `direct_url.json`.

    Raises:
        ScaffoldError: core-framework is not installed as a distribution (only on sys.path).
    """
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ScaffoldError(
            f"{DISTRIBUTION} is not installed (is `core` running from a source tree?): "
            "install it with pip, or pass --no-venv."
        ) from None
    return framework_source(distribution.version, distribution.read_text("direct_url.json"))


def framework_source(version: str, direct_url: str | None) -> FrameworkSource:
    """Interpret a `direct_url.json` (None when installed from an index)."""
    if not direct_url:
        return FrameworkSource(version)
    try:
        data = json.loads(direct_url)
        url = str(data["url"])
    except (ValueError, KeyError, TypeError):
        return FrameworkSource(version)
    parts = urlsplit(url)
    if "dir_info" in data and parts.scheme == "file":
        editable = bool(data["dir_info"].get("editable", False))
        return FrameworkSource(version, directory=Path(unquote(parts.path)), editable=editable)
    vcs = data.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        pinned = f"{vcs['vcs']}+{url}" + (f"@{commit}" if commit else "")
        return FrameworkSource(version, url=pinned)
    return FrameworkSource(version, url=url)


def create_virtualenv(
    project: Path, interpreter: Interpreter, packages: Sequence[str], *, quiet: bool = True
) -> Path:
    """Create `project/.venv` with `interpreter` and install `packages` (pip arguments) into it.

    Uses uv when it is on PATH, else the `venv` module and pip.

    Returns:
        The virtualenv's Python.

    Raises:
        ScaffoldError: creating it or installing failed; the message names the command.
    """
    venv = project / ".venv"
    python = venv / "bin" / "python"
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "--quiet", "--python", str(interpreter.path), str(venv)], "uv venv")
        install = [uv, "pip", "install", "--python", str(python)]
        _run([*install, *(["--quiet"] if quiet else []), *packages], "uv pip install")
    else:
        label = f"python{interpreter.short_version} -m venv"
        _run([str(interpreter.path), "-m", "venv", str(venv)], label)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        _run([*pip, *(["--quiet"] if quiet else []), *packages], "pip install")
    return python


def _run(command: list[str], label: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ScaffoldError(f"{label} could not start: {exc.strerror or exc}.") from None
    if done.returncode != 0:
        raise ScaffoldError(f"{label} failed (exit {done.returncode}): {_last_error(done.stderr)}")


def _last_error(stderr: str) -> str:
    # pip prints warnings (ignored index locations, ...) before the error that matters.
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or ["no output"])[-1]
