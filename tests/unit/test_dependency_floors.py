"""The installed dependencies sit between the floors and ceilings pyproject.toml declares.

No advisory database is reachable where the tests run, so the floors are the security check:
they exclude releases with known vulnerabilities, and the ceilings exclude the next breaking
release of libraries whose private API the adapters use. The bounds are read from
pyproject.toml itself, so this test and the packaging metadata cannot drift apart.
"""

from __future__ import annotations

import os
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"

# name -> (a release the bounds must exclude because it is vulnerable or incompatible,
#          a release the bounds must exclude because it is the next breaking one, if any)
CHECKED = {
    "pyjwt": ("2.10.0", None),  # CVE-2024-53861
    "starlette": ("0.49.0", None),  # CVE-2025-62727 (and the earlier CVE-2024-47874, -54121)
    "h11": ("0.15.0", None),  # CVE-2025-43859
    "faststream": ("0.5.48", "0.8.0"),  # 0.5 has no AckPolicy; 0.x minors break
    "taskiq": (None, "0.14.0"),
    "taskiq-redis": (None, "2.0.0"),
    "sqlalchemy": (None, "2.2.0"),  # core.models.relations subclasses its lazy loader
}


def _declared() -> dict[str, SpecifierSet]:
    """Every bound pyproject.toml puts on a checked name, across dependencies and extras."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    bounds: dict[str, SpecifierSet] = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in CHECKED:
            bounds[name] = bounds.get(name, SpecifierSet()) & requirement.specifier
    return bounds


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_pyproject_bounds_exclude_the_known_bad_releases(name: str) -> None:
    bounds = _declared()
    assert name in bounds, f"pyproject.toml declares no bound on {name}"
    vulnerable, next_breaking = CHECKED[name]
    if vulnerable is not None:
        assert Version(vulnerable) not in bounds[name], f"{name} {vulnerable} is allowed"
        assert any(spec.operator in (">=", ">", "~=") for spec in bounds[name])
    if next_breaking is not None:
        assert Version(next_breaking) not in bounds[name], f"{name} {next_breaking} is allowed"


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_the_installed_version_is_within_the_bounds(name: str) -> None:
    bounds = _declared()[name]
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        # CI installs every extra: there, a missing one is a failure.
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed")
        pytest.skip(f"{name} is not installed (an extra that is not installed here)")

    assert Version(installed) in bounds, (
        f"{name} {installed} is installed, outside pyproject.toml's {bounds}"
    )


def test_fastapi_floor_brings_a_patched_starlette() -> None:
    # The fastapi floor must itself require a Starlette past the CVEs, so a resolver that
    # honours fastapi's metadata alone cannot pick a vulnerable Starlette.
    floor = next(
        Version(spec.version)
        for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
        if canonicalize_name(Requirement(line).name) == "fastapi"
        for spec in Requirement(line).specifier
        if spec.operator == ">="
    )
    assert floor >= Version("0.164")
