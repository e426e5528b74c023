"""`core createsuperuser`: create an administrator in the project's user model.

Defines the command function only; `core.cli` registers it with `app.command(createsuperuser)`.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
from typing import Annotated, Any

from cyclopts import Parameter

from core.auth.errors import PasswordPolicyError
from core.discovery import load_app, read_settings
from core.errors import ConfigurationError, ValidationFailedError

__all__ = ("create_superuser", "createsuperuser")

#: Read by `--no-input` when `--email` / `--password` are not given (keeps the password out of
#: the shell history and the process list).
EMAIL_ENV = "CORE_SUPERUSER_EMAIL"
PASSWORD_ENV = "CORE_SUPERUSER_PASSWORD"

# Looked up at call time, so tests can substitute them.
_prompt = input
_getpass = getpass.getpass


def createsuperuser(
    *,
    email: str | None = None,
    password: str | None = None,
    no_input: Annotated[bool, Parameter(negative=())] = False,
    app_module: Annotated[str | None, Parameter(name="--app")] = None,
) -> None:
    """Create a superuser (is_staff and is_superuser) in the project's user model.

    Imports the app module (APP_MODULE, default `src.main:app`), whose `configure_auth(
    user_model=User)` names the model, and writes to its database: run `core migrate` first.
    Asks for what is missing (the password twice, hidden, checked against the password policy)
    unless `--no-input` is given.

    Args:
        email: The superuser's email (stored lower-cased).
        password: The password; prefer the prompt, or CORE_SUPERUSER_PASSWORD with --no-input,
            which stay out of the shell history.
        no_input: Never prompt: take --email/--password, else CORE_SUPERUSER_EMAIL and
            CORE_SUPERUSER_PASSWORD, and fail when one is missing (for scripts and CI).
        app_module: `module:attr` of the CoreApp instead of APP_MODULE.

    Raises:
        ConfigurationError: no user model, a missing value with --no-input, no terminal.
        ValidationFailedError: the email is taken or the password breaks the policy.
    """
    application = _load(app_module)
    model = _user_model(application)
    if no_input:
        email = email or os.environ.get(EMAIL_ENV)
        password = password if password is not None else os.environ.get(PASSWORD_ENV)
        if not email or not password:
            raise ConfigurationError(
                f"--no-input needs --email and --password (or {EMAIL_ENV} and {PASSWORD_ENV})."
            )
    else:
        email = email or _ask_email()
        if password is None:
            password = _ask_password(application.container.auth.password_policy(), model, email)
    # The outage log is for servers, which keep answering 503; this one-shot command reports
    # an unreachable database itself, in its one error line.
    outages = logging.getLogger("core.database")
    outages.disabled = True
    try:
        user = asyncio.run(create_superuser(application, email, password))
    finally:
        outages.disabled = False
    print(f"Superuser {user.email} created.")


async def create_superuser(application: Any, email: str, password: str) -> Any:
    """Create the superuser in `application`'s database and return it.

    Raises:
        ValidationFailedError: the email is taken, or the password breaks the policy (the
            message lists every reason).
    """
    from sqlalchemy.exc import DBAPIError

    model = _user_model(application)
    try:
        async with application.session() as db:
            if await model.get_by_email(email, db) is not None:
                raise ValidationFailedError(
                    f"A user with email {model.normalize_email(email)!r} already exists."
                )
            return await model.create_superuser(email=email, password=password, db=db)
    except PasswordPolicyError as exc:
        raise ValidationFailedError("Password refused: " + " ".join(exc.reasons)) from None
    except DBAPIError as exc:
        reason = str(exc.orig or exc).splitlines()[0]
        raise ConfigurationError(
            f"The database refused the new user ({reason}); has `core migrate` run?"
        ) from exc
    except OSError as exc:
        # The driver's connect failed (refused, unknown host, timed out): no DBAPI error yet.
        raise ConfigurationError(
            f"Cannot reach the database at {_safe_url(application)}: {exc}"
        ) from exc
    except ImportError as exc:
        raise ConfigurationError(
            f"The driver DATABASE_URL names is not installed ({exc})."
        ) from exc
    finally:
        # A one-shot command: close the pool so no connection outlives asyncio.run's loop.
        await application.container.database.database().dispose()


def _safe_url(application: Any) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(application.settings.database_url).render_as_string(hide_password=True)
    except Exception:
        return "DATABASE_URL"


def _load(app_module: str | None) -> Any:
    settings = read_settings()
    spec = app_module or settings.app_module
    application = load_app(spec)
    if not (hasattr(application, "container") and hasattr(application, "session")):
        raise ConfigurationError(f"{spec!r} is not a CoreApp.")
    return application


def _user_model(application: Any) -> Any:
    model = application.container.auth.user_model()
    if model is None:
        raise ConfigurationError(
            "No user model: call configure_auth(user_model=User) in the app module."
        )
    if not callable(getattr(model, "create_superuser", None)):
        raise ConfigurationError(
            f"{model.__name__} has no create_superuser(): subclass core.auth.AbstractUser."
        )
    return model


def _ask_email() -> str:
    while True:
        try:
            email = _prompt("Email: ").strip()
        except EOFError:
            raise ConfigurationError(
                "No terminal to ask for the email: pass --email, or use --no-input."
            ) from None
        if "@" in email and len(email) <= 254:
            return email
        print("Enter a valid email address.")


def _ask_password(policy: Any, model: Any, email: str) -> str:
    # The policy may compare the password with the user's attributes (its email): give it an
    # unsaved user carrying the email typed in.
    candidate = model(email=email)
    while True:
        try:
            password = _getpass("Password: ")
            again = _getpass("Password (again): ")
        except EOFError:
            raise ConfigurationError(
                f"No terminal to ask for the password: use --no-input with {PASSWORD_ENV}."
            ) from None
        if password != again:
            print("Passwords do not match.")
            continue
        reasons = policy.errors(password, candidate)
        if not reasons:
            return password
        for reason in reasons:
            print(reason)
