"""The `core` command line. Importing this package registers every command on `app`."""

from core.cli import init as init
from core.cli import messaging as messaging
from core.cli import migrations as migrations
from core.cli import outbox as outbox
from core.cli import server as server
from core.cli import status as status
from core.cli import tasks as tasks
from core.cli.app import app, console, main
from core.cli.container import container_app
from core.cli.deploy import deploy_app
from core.cli.users import createsuperuser

app.command(container_app)
app.command(createsuperuser)
app.command(messaging.topics_app)
app.command(messaging.outbox_app)
app.command(deploy_app)

__all__ = ("app", "console", "main")
