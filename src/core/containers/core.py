"""CoreContainer and build_container(): the composition root every entry point shares."""

from __future__ import annotations

from dependency_injector import containers, providers

from core.auth.config import auth_declaration
from core.containers.auth import AuthContainer
from core.containers.database import DatabaseContainer
from core.containers.messaging import MessagingContainer
from core.containers.tasks import TasksContainer
from core.containers.throttling import ThrottlingContainer
from core.settings import Settings


class CoreContainer(containers.DeclarativeContainer):
    """The root container: settings, and one nested container per area.

    Override a provider at the path the framework resolves, before first use:
    `with app.container.database.repository.override(fake): ...`.
    """

    config = providers.Configuration(strict=True)
    settings = providers.Dependency(instance_of=Settings)

    database = providers.Container(DatabaseContainer, config=config)
    auth = providers.Container(AuthContainer, config=config)
    messaging = providers.Container(MessagingContainer, config=config)
    tasks = providers.Container(TasksContainer, config=config)
    throttling = providers.Container(ThrottlingContainer, config=config)


def build_container(settings: Settings | None = None) -> CoreContainer:
    """Build the root container from settings (read from the environment and `.env` when None).

    Raises:
        ConfigurationError: the settings must not run (e.g. production with the default SECRET_KEY).
    """
    settings = settings if settings is not None else Settings()
    # `configure_auth(secret_key=...)` overrides SECRET_KEY: the key that will sign is checked.
    declared = auth_declaration()
    settings.check(
        declared.value("secret_key", settings.secret_key),
        declared.value("algorithm", settings.auth_algorithm),
    )
    container = CoreContainer(settings=settings)
    container.config.from_dict(settings.as_config())
    return container
