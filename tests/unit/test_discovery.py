"""Finding the project's app from `module:attr`, an app or an app factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core import CoreApp
from core.discovery import is_app_factory, load_app
from core.errors import ConfigurationError


def test_a_factory_is_called_and_an_app_taken_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "factoryproj.py").write_text(
        "from core import CoreApp\n"
        "from core.settings import Settings\n"
        "app = CoreApp(settings=Settings(database_url='memory://'))\n"
        "def create_app():\n"
        "    return CoreApp(settings=Settings(database_url='memory://'))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert isinstance(load_app("factoryproj:create_app", root=tmp_path), CoreApp)
    assert is_app_factory("factoryproj:create_app", root=tmp_path)
    assert not is_app_factory("factoryproj:app", root=tmp_path)
    module = sys.modules["factoryproj"]
    assert load_app("factoryproj:app", root=tmp_path) is module.app
    with pytest.raises(ConfigurationError, match="no attribute 'nope'"):
        load_app("factoryproj:nope", root=tmp_path)
