"""`core container graph`: the providers of the app's container, the adapter each port really
serves under the current settings (registered ones by name and class) with the effective values
behind it, who depends on whom, and with `--users` which ViewSets, consumers and tasks resolve
each provider.

Defines the `container` sub-app only; `core.cli` registers it with `app.command(container_app)`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

from cyclopts import App, Parameter

from core.discovery import import_app_module, load_app, read_settings, split_spec
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
    users: Annotated[bool, Parameter(name="--users", negative=())] = False,
) -> None:
    """Print the adapter each port serves, the container's providers and their dependencies.

    Builds the container the way the app does: from the project's app (APP_MODULE, default
    `src.main:app`, imported from the working directory) when it exists, else with
    `build_container()` from the settings (environment, then `.env`). Nothing is instantiated
    and no connection is opened: only configuration values, the `configure_auth` declaration
    and the registered adapters are read. Passwords in URLs and the signing key are masked.

    Args:
        output_format: `text` (a tree), `mermaid` (a flowchart for Markdown) or `dot` (Graphviz:
            `core container graph --format dot | dot -Tsvg > graph.svg`).
        app_module: `module:attr` of the CoreApp to inspect instead of APP_MODULE.
        users: Also list which ViewSet actions (from the app's AutoRouters), consumers and tasks
            (from their declarations) resolve each provider.

    Raises:
        ConfigurationError: the settings are invalid, or the app module fails to import.
    """
    from core.containers.graph import build_graph, render_dot, render_mermaid, render_text

    application, container, source = _load_container(app_module)
    renderers = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
    # The source goes to stderr so `--format mermaid > graph.mmd` stays a valid diagram.
    print(f"container: {source}", file=sys.stderr)
    if users and application is None:
        print("no app: --users lists the declared consumers and tasks only", file=sys.stderr)
    drawn = build_graph(container, app=application, users=users)
    print(renderers[output_format](drawn), end="")


def _load_container(app_module: str | None) -> tuple[Any, Any, str]:
    """The app (None without one), the container to draw, and where they came from."""
    from core.containers import build_container

    settings = read_settings()
    spec = app_module or settings.app_module
    # A project without an app module still has the framework's container; a broken module is
    # an error even without --app, since drawing the defaults would hide its providers.
    module = import_app_module(spec, required=app_module is not None)
    if module is None:
        origin = f"build_container() from the settings (no {split_spec(spec)[0]!r})"
        return None, build_container(settings), origin
    application = load_app(spec)
    # A CoreApp exposes `.container`; accept a container itself too (`module:container`).
    container = getattr(application, "container", application)
    if not hasattr(container, "providers"):
        raise ConfigurationError(
            f"{spec!r} is neither a CoreApp nor a container: it has no .container or .providers."
        )
    return (application if application is not container else None), container, spec
