"""`core container graph`: the providers of the app's container, the adapter each Selector picks
from the current settings, and who depends on whom.

Defines the `container` sub-app only; `core.cli` registers it with `app.command(container_app)`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from cyclopts import App, Parameter

from core.errors import ConfigurationError

__all__ = ("container_app", "graph")

GraphFormat = Literal["text", "mermaid", "dot"]

container_app = App(
    name="container",
    help="Inspect the composition root: providers, selected adapters, dependencies.",
)


@container_app.command
def graph(
    *,
    output_format: Annotated[GraphFormat, Parameter(name=("--format", "-f"))] = "text",
    app_module: Annotated[str | None, Parameter(name="--app")] = None,
) -> None:
    """Print the container's providers, which adapter each Selector picked, and their dependencies.

    Builds the container the way the app does: from the project's app (APP_MODULE, default
    `src.main:app`, imported from the working directory) when it exists, else with
    `build_container()` from the settings (environment, then `.env`). Nothing is instantiated
    and no connection is opened: only configuration values are read.

    Args:
        output_format: `text` (a tree), `mermaid` (a flowchart for Markdown) or `dot` (Graphviz:
            `core container graph --format dot | dot -Tsvg > graph.svg`).
        app_module: `module:attr` of the CoreApp to inspect instead of APP_MODULE.

    Raises:
        ConfigurationError: the settings are invalid, or the app module fails to import.
    """
    from core.containers.graph import build_graph, render_dot, render_mermaid, render_text

    container, source = _load_container(app_module)
    renderers = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
    # The source goes to stderr so `--format mermaid > graph.mmd` stays a valid diagram.
    print(f"container: {source}", file=sys.stderr)
    print(renderers[output_format](build_graph(container)), end="")


def _load_container(app_module: str | None) -> tuple[Any, str]:
    """The container to draw, and a few words on where it came from."""
    from pydantic import ValidationError

    from core.containers import build_container
    from core.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"Invalid settings: {problems}.") from None
    spec = app_module or settings.app_module
    container = _container_from_app(spec, required=app_module is not None)
    if container is not None:
        return container, spec
    module_name = spec.partition(":")[0].strip()
    return build_container(settings), f"build_container() from the settings (no {module_name!r})"


def _container_from_app(spec: str, *, required: bool) -> Any | None:
    """The `.container` of the app at `spec`; None when its module does not exist and the user
    did not name it explicitly (a project without an app still has the framework's container).
    """
    module_name, _, attribute = (part.strip() for part in spec.partition(":"))
    if not module_name:
        raise ConfigurationError(f"--app / APP_MODULE must look like 'module:attr', got {spec!r}.")
    root = str(Path.cwd())
    # A console script does not put the cwd on sys.path the way `python -m` does, and the
    # project's modules (`src.main`) are addressed from its root.
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(f"{missing}.")):
            if not required:
                return None
            raise ConfigurationError(
                f"Cannot find the app module {module_name!r} under {root}: run core from the "
                "project root, or pass --app module:attr."
            ) from None
        raise ConfigurationError(_import_failure(module_name, exc)) from exc
    except Exception as exc:
        # The module exists but is broken: drawing the framework's default container instead
        # would hide the project's own providers, so this is an error even without --app.
        raise ConfigurationError(_import_failure(module_name, exc)) from exc
    attribute = attribute or "app"
    application = getattr(module, attribute, None)
    if application is None:
        raise ConfigurationError(f"{module_name!r} has no attribute {attribute!r}.")
    # A CoreApp exposes `.container`; accept a container itself too (`module:container`).
    container = getattr(application, "container", application)
    if not hasattr(container, "providers"):
        raise ConfigurationError(
            f"{spec!r} is neither a CoreApp nor a container: it has no .container or .providers."
        )
    return container


def _import_failure(module_name: str, exc: BaseException) -> str:
    message = str(exc).splitlines()[0] if str(exc) else ""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}: "
    return (
        f"Importing the app module {module_name!r} failed: {where}{type(exc).__name__}: {message}"
    )
