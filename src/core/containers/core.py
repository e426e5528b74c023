"""CoreContainer and build_container(): the composition root every entry point shares."""

from __future__ import annotations

from dependency_injector import containers, providers

from core.containers.auth import AuthContainer
from core.containers.database import DatabaseContainer
from core.containers.idempotency import IdempotencyContainer
from core.containers.messaging import MessagingContainer
from core.containers.metrics import MetricsContainer
from core.containers.tasks import TasksContainer
from core.containers.throttling import ThrottlingContainer
from core.declarations import Declarations
from core.declarations import declarations as process_declarations
from core.settings import Settings
from core.tracing import Tracing, build_tracing


def _tracing(settings: Settings) -> Tracing | None:
    return build_tracing(settings)


class CoreContainer(containers.DeclarativeContainer):
    """The root container: settings, declarations, and one nested container per area.

    Each area declares what it needs from the others (`providers.Dependency` /
    `providers.DependenciesContainer`) and is wired here; none reaches up to this container.
    Given by `build_container`: `settings`, `declarations` (what `@task`, `@consumer`,
    `register_*` and `configure_auth` recorded) and `context` (this container itself: the
    app context that task runs, consumer messages and relay passes make ambient).

    Override a provider at the path the framework resolves, before first use:
    `with app.container.database.repository.override(fake): ...`.
    """

    config = providers.Configuration(strict=True)
    settings = providers.Dependency(instance_of=Settings)
    declarations = providers.Dependency(instance_of=Declarations)
    context = providers.Dependency(instance_of=containers.Container)
    # Core's OpenTelemetry tracer, or None when TRACING_ENABLED is off (core.tracing).
    tracing = providers.Singleton(_tracing, settings=settings)

    database = providers.Container(DatabaseContainer, config=config, tracing=tracing)
    metrics = providers.Container(MetricsContainer, config=config)
    auth = providers.Container(
        AuthContainer, config=config, database=database.database, declarations=declarations
    )
    messaging = providers.Container(
        MessagingContainer,
        config=config,
        database=database,
        declarations=declarations,
        context=context,
        metrics=metrics.recorder,
        tracing=tracing,
    )
    tasks = providers.Container(
        TasksContainer,
        config=config,
        declarations=declarations,
        context=context,
        metrics=metrics.recorder,
        tracing=tracing,
    )
    throttling = providers.Container(ThrottlingContainer, config=config)
    idempotency = providers.Container(
        IdempotencyContainer, config=config, database=database.database
    )


def build_container(
    settings: Settings | None = None, *, declarations: Declarations | None = None
) -> CoreContainer:
    """Build the root container from settings (read from the environment and `.env` when None).

    Args:
        settings: what to build from; `Settings()` when None.
        declarations: the declared tasks, events, consumers and auth adapters to bind; the
            process's (where the decorators record) when None.

    Raises:
        ConfigurationError: the settings must not run (e.g. production with the default SECRET_KEY).
    """
    settings = settings if settings is not None else Settings()
    declared = declarations if declarations is not None else process_declarations()
    # `configure_auth(secret_key=...)` overrides SECRET_KEY: the key that will sign is checked.
    settings.check(
        declared.auth.value("secret_key", settings.secret_key),
        declared.auth.value("algorithm", settings.auth_algorithm),
    )
    container = CoreContainer(settings=settings, declarations=declared)
    # The app context is this container itself; given after construction, as nothing can name
    # an instance before it exists.
    container.context.override(providers.Object(container))
    container.config.from_dict(settings.as_config())
    return container
