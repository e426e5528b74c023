"""Scripts as users write them, with no CoreApp and no `core.setup()`, run in a subprocess.

The unit tests run them on SQLite and the integration tests on PostgreSQL: the models work on
the user's own engine and `AsyncSession`, through `Model.objects.using(db)`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.docs_runner import clean_environment

ROOT = Path(__file__).resolve().parent.parent

MODELS_SCRIPT = """
    import asyncio
    import sys

    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import Mapped

    from core import Field, Model


    class Post(Model):
        __tablename__ = "script_posts"
        id: Mapped[int] = Field.pk()
        title: Mapped[str] = Field.string(max_length=100)
        views: Mapped[int] = Field.integer(default=0)


    async def main(url: str) -> None:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(Post.__table__.create)
        sessions = async_sessionmaker(engine, expire_on_commit=False)

        async with sessions() as db:
            await Post.objects.using(db).create(title="first")
            await Post.objects.create(title="second", views=5, db=db)
            await Post.objects.using(db).bulk_create([{"title": "third"}])
            await db.commit()

        async with sessions() as db:
            posts = Post.objects.using(db)
            print("titles", [post.title for post in await posts.order_by("id").all()])
            print("popular", await posts.filter(views__gte=5).count())
            print("updated", await posts.filter(title="first").update(views=9))
            third = await posts.get(title="third")
            third.views = 1
            await third.save(db)
            print("deleted", await posts.filter(title="second").delete())
            await (await posts.get(title="first")).delete(db)
            await db.commit()

        async with sessions() as db:
            print("left", await Post.objects.using(db).values_list("title", "views"))
        await engine.dispose()


    asyncio.run(main(sys.argv[1]))
"""

USER_SCRIPT = """
    import asyncio
    import sys

    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from core.auth import AbstractUser, configure_auth


    class User(AbstractUser):
        __tablename__ = "script_users"


    configure_auth(user_model=User)


    async def main(url: str) -> None:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(User.__table__.create)
        sessions = async_sessionmaker(engine, expire_on_commit=False)

        async with sessions() as db:
            user = await User.create_user(email="Ann@Example.com", password="s3cret-pass", db=db)
            await db.commit()
        print("created", user.id, user.email, user.password.split("$")[1])

        async with sessions() as db:
            found = await User.authenticate("ann@example.com", "s3cret-pass", db)
            print("authenticated", found is not None and found.id == user.id)
            print("wrong password", await User.authenticate("ann@example.com", "nope", db))
            print("by email", (await User.get_by_email("ANN@example.com", db)).id == user.id)
        await engine.dispose()


    asyncio.run(main(sys.argv[1]))
"""


# A script on the process default container's database, in two `asyncio.run`s: each loop's end
# closes the default's connections on that loop (asyncpg's cannot be used from another one), so
# the second run gets fresh ones and the process exits at once.
DEFAULT_ACROSS_LOOPS = """
    import asyncio
    import os
    import sys

    os.environ["DATABASE_URL"] = sys.argv[1]

    from sqlalchemy.orm import Mapped

    from core import Field, Model
    from core.context import default_container
    from core.models.session import unit_of_work


    class Tally(Model):
        __tablename__ = "tallies"
        id: Mapped[int] = Field.pk()


    async def add() -> int:
        await default_container().database.database().create_all(Tally.metadata)
        async with unit_of_work() as db:
            await Tally.objects.create(db=db)
        async with unit_of_work():
            return await Tally.objects.count()


    print(asyncio.run(add()), asyncio.run(add()))
"""


def run_script(tmp_path: Path, source: str, *argv: str) -> list[str]:
    """Run `source` as `script.py` in `tmp_path` with the framework's settings cleared (the
    embedded defaults apply), and return its output lines; fail with its stderr."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    env = clean_environment()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    result = subprocess.run(
        [sys.executable, str(script), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    return result.stdout.splitlines()
