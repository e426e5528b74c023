"""What one provider is, read from its declaration: its kind, what it provides, what it builds
(from the declared adapter table), and how to name it when it has no path."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from dependency_injector import providers

from core.containers.graph.model import CONFIGURATION_OPTION
from core.containers.graph.table import ADAPTERS, BUILDERS

__all__ = (
    "builds",
    "children_of",
    "container_class_name",
    "describe",
    "has_injections",
    "kind",
    "qualified_name",
    "target",
)

# Selector branch path -> the adapter class the table says it builds.
_BRANCH_ADAPTERS = {
    f"{entry.provider}.{value}": adapter.cls
    for entry in ADAPTERS
    for value, adapter in entry.adapters.items()
}


def kind(provider: Any) -> str:
    """The provider's type name (`Singleton`, `Selector`, ...); options are one kind."""
    if isinstance(provider, providers.ConfigurationOption | providers.TypedConfigurationOption):
        return CONFIGURATION_OPTION
    return type(provider).__name__


def qualified_name(obj: Any) -> str:
    """`module.QualName` of a class or function; `... instance` for anything else."""
    if isinstance(obj, functools.partial):
        return f"functools.partial({qualified_name(obj.func)})"
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(qualname, str):
        return f"{qualified_name(type(obj))} instance"
    module = getattr(obj, "__module__", None)
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def target(provider: Any) -> str | None:
    """What the provider provides: a class or callable, the class a Dependency expects, the
    container a Container instantiates; None for configuration and what provides nothing."""
    if isinstance(provider, providers.Container):
        inner = provider.container
        return None if inner is None else container_class_name(inner)
    if isinstance(provider, providers.Dependency):
        instance_of = provider.instance_of
        return None if instance_of is object else qualified_name(instance_of)
    if isinstance(
        provider,
        providers.Configuration | providers.ConfigurationOption | providers.DependenciesContainer,
    ):
        return None
    if isinstance(provider, providers.TypedConfigurationOption):
        return None
    if isinstance(provider, providers.Object):
        value = provider.provides
        # The value itself may be a secret (a URL with a password); its type is enough.
        return qualified_name(value if isinstance(value, type) else type(value)) + (
            "" if isinstance(value, type) else " instance"
        )
    provides = getattr(provider, "provides", None) if has_injections(provider) else None
    if provides is None or providers.is_provider(provides):
        return None
    return qualified_name(provides)


def container_class_name(container: Any) -> str:
    """The declarative class of a container instance (or the class itself), qualified."""
    cls = getattr(container, "declarative_parent", None)
    if cls is None:
        cls = container if isinstance(container, type) else type(container)
    return qualified_name(cls)


def has_injections(provider: Any) -> bool:
    """Whether the provider has args, kwargs and attributes to read."""
    # The providers with args/kwargs/attributes; asking a Selector or Container for `.args`
    # would look up a branch or a child provider of that name instead.
    return isinstance(
        provider,
        providers.Factory
        | providers.BaseSingleton
        | providers.Callable
        | providers.BaseResource
        | providers.List
        | providers.Dict
        | providers.MethodCaller,
    ) and not isinstance(provider, providers.TypedConfigurationOption)


def builds(provider: Any, path: str, use_table: bool) -> tuple[str, ...]:
    """The classes the provider at `path` constructs when its target is a builder function."""
    # What a builder function constructs is read from the declared adapter table, never from
    # its source: calling it would build the adapter, importing it could need a missing extra.
    declared = (_BRANCH_ADAPTERS.get(path) or BUILDERS.get(path)) if use_table else None
    if declared is not None:
        return () if declared == target(provider) else (declared,)
    if not has_injections(provider) or isinstance(provider, providers.List | providers.Dict):
        return ()
    provides = getattr(provider, "provides", None)
    if isinstance(provides, functools.partial):
        provides = provides.func
    owner = getattr(provides, "__self__", None)
    if isinstance(owner, type) and inspect.ismethod(provides):
        # An alternate constructor (`InMemoryRepository.for_session`) builds its own class.
        return (qualified_name(owner),)
    return ()


def children_of(provider: providers.Container[Any]) -> dict[str, Any]:
    """The providers of a nested container, by name, in declaration order."""
    inner = provider.container
    return {} if inner is None else dict(inner.providers)


def describe(provider: Any, paths: Mapping[int, str]) -> str:
    """The provider's path when it has one, else its kind and target: `Object(Fake instance)`."""
    path = paths.get(id(provider))
    if path is not None:
        return path
    provider_kind = kind(provider)
    provided = target(provider)
    return f"{provider_kind}({provided})" if provided else provider_kind
