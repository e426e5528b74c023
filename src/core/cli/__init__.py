"""The `core` command line. Importing this package registers every command on `app`."""

from core.cli import migrations as migrations
from core.cli import server as server
from core.cli.app import app, main
from core.cli.container import container_app

app.command(container_app)

__all__ = ("app", "main")
