"""Which adapter each port really serves, and the effective values it is built from.

Reads the container's configuration, the `configure_auth` declaration and the registries of
custom adapters, through the declared adapter table; builds nothing and connects to nothing.
Passwords in URLs and the signing key are masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from core.containers.graph.model import GraphNode, PortUse
from core.containers.graph.table import ADAPTERS, DECLARED, Adapter, PortEntry
from core.declarations import Declarations
from core.errors import ConfigurationError
from core.settings import PUBLIC_SECRET_KEYS

MASK = "***"
# Attributes worth showing on a registered adapter, when it has them (read, never called).
_REGISTERED_ATTRIBUTES = ("scheme", "rounds", "iterations", "algorithm")


def resolve_ports(
    config: Mapping[str, Any], nodes: Mapping[str, GraphNode], declarations: Declarations
) -> tuple[PortUse, ...]:
    """The adapter in use for every port of the table the container declares.

    Args:
        config: The container's configuration values (`container.config()`).
        nodes: The graph's nodes by path (for overrides).
        declarations: The container's declarations (registered adapters, `configure_auth`).
    """
    return tuple(
        _resolve(entry, config, nodes[entry.provider], declarations)
        for entry in ADAPTERS
        if entry.provider in nodes and entry.setting in config
    )


def effective(config: Mapping[str, Any], setting: str, declarations: Declarations) -> Any:
    """The value a container builds with: the `configure_auth` declaration's, else the setting's."""
    value = config.get(setting)
    keyword = DECLARED.get(setting)
    return value if keyword is None else declarations.auth.value(keyword, value)


def _resolve(
    entry: PortEntry, config: Mapping[str, Any], node: GraphNode, declarations: Declarations
) -> PortUse:
    value = effective(config, entry.setting, declarations)
    keyword = entry.declared
    declared = keyword is not None and getattr(declarations.auth, keyword, None) is not None
    common: dict[str, Any] = {
        "provider": entry.provider,
        "port": entry.port,
        "setting": entry.label or entry.setting.upper(),
        "value": None if value is None else str(value),
        "declared": declared,
        "overridden_by": node.overridden_by,
    }
    if entry.registered is not None and isinstance(value, str):
        try:
            instance = entry.registered(value, declarations)
        except ConfigurationError as exc:
            return PortUse(adapter=None, note=str(exc), **common)
        if instance is not None:
            return PortUse(
                adapter=_qualified(type(instance)),
                registered=True,
                values=_registered_values(instance),
                **common,
            )
    adapter = entry.adapters.get(value) if isinstance(value, str) else None
    if adapter is None:
        known = ", ".join(entry.adapters)
        return PortUse(adapter=None, note=f"no adapter for {value!r}; known: {known}", **common)
    values = _builtin_values(entry, adapter, str(value), config, declarations)
    return PortUse(adapter=adapter.cls, values=values, **common)


def _builtin_values(
    entry: PortEntry,
    adapter: Adapter,
    value: str,
    config: Mapping[str, Any],
    declarations: Declarations,
) -> tuple[tuple[str, str], ...]:
    values: list[tuple[str, str]] = []
    if entry.provider == "auth.password_hasher":
        from core.adapters.passlib.hashers import work_factors

        values.extend((key, str(factor)) for key, factor in work_factors(value).items())
    for setting in adapter.settings:
        values.extend(describe_setting(setting, effective(config, setting, declarations)))
    return tuple(values)


def _registered_values(instance: object) -> tuple[tuple[str, str], ...]:
    values = [("name", str(getattr(instance, "name", "?")))]
    for attribute in _REGISTERED_ATTRIBUTES:
        found = getattr(type(instance), attribute, None)
        found = getattr(instance, "__dict__", {}).get(attribute, found)
        if isinstance(found, str | int | float):
            values.append((attribute, str(found)))
    return tuple(values)


def describe_setting(setting: str, value: Any) -> list[tuple[str, str]]:
    """A setting's value as (label, text) pairs to show; secrets masked, URLs split.

    Example:
        >>> describe_setting("redis_url", "redis://:pw@cache:6379/0")
        [('REDIS_URL', 'redis://:***@cache:6379/0')]
    """
    label = setting.upper()
    if value is None:
        return [(label, "unset")]
    if setting == "secret_key":
        if not value:
            return [(label, "unset")]
        public = " (a publicly known value)" if value in PUBLIC_SECRET_KEYS else ""
        return [(label, f"{MASK}{public}")]
    if setting == "database_url":
        return _database_url(str(value))
    if setting.endswith("_url"):
        return [(label, mask_url(str(value)))]
    return [(label, str(value))]


def _database_url(url: str) -> list[tuple[str, str]]:
    parts = urlsplit(url)
    dialect = parts.scheme or "?"
    if dialect.startswith("sqlite"):
        # sqlite+aiosqlite:///./app.db: no host, the path is the file (":memory:" when empty).
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return [("dialect", dialect), ("database", path or ":memory:"), ("DATABASE_URL", url)]
    values = [("dialect", dialect), ("host", _host(parts))]
    values.append(("database", parts.path.lstrip("/") or "(default)"))
    values.append(("DATABASE_URL", mask_url(url)))
    return values


def _host(parts: SplitResult) -> str:
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "(default)"
    return f"{host}:{port}" if port is not None else host


def mask_url(url: str) -> str:
    """`url` with its password, if any, replaced by `***`.

    Example:
        >>> mask_url("postgresql+asyncpg://app:s3cret@db:5432/shop")
        'postgresql+asyncpg://app:***@db:5432/shop'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:{MASK}@{hostinfo}").geturl()


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
