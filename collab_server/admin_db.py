"""The main database as the admin subcommands (token, user, group) open it.

They work on the server's existing data and never make a new database by
accident (``collab-server user list`` run in the wrong folder must not leave a
``./data`` behind): unless given ``--create``, the database must already hold the
server's tables. For SQLite (the default, ``data_dir/collab.db``) the file must
exist; for another URL (PostgreSQL) the database must be reachable and have them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from traitlets import Bool
from traitlets.config import Application, Configurable

from auth.schema import metadata, users

from .app import ServerConfig, load_config_file
from .database import is_sqlite, open_engine
from .errors import StartupError


class AdminDatabase(Configurable):
    """How the admin subcommands open the server's database."""

    create = Bool(
        False,
        config=True,
        help="Create the server's database if it does not exist yet (e.g. to add users "
        "before the server's first start).",
    )


CREATE_FLAG = {
    "create": (
        {"AdminDatabase": {"create": True}},
        "Create the server's database if it does not exist yet.",
    )
}


def open_main_database(app: Application) -> Engine:
    """The server's main database, from the app's config file and flags.

    Raises StartupError when there is none (and ``--create`` was not given) or
    it cannot be reached.
    """
    load_config_file(app)
    settings = ServerConfig(parent=app).settings()
    create = AdminDatabase(parent=app).create
    url = settings.resolved_db_url()
    shown = make_url(url).render_as_string(hide_password=True)
    if is_sqlite(url):
        database = Path(make_url(url).database or "")
        if create:
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif not database.is_file():
            raise StartupError(
                f"no server data in {settings.data_dir} ({database.name} is missing): run "
                "where the server runs or pass --data-dir/--config; --create makes a new one"
            )
    engine = open_engine(url, settings.sqlite_synchronous)
    try:
        if create:
            metadata.create_all(engine)
        elif not inspect(engine).has_table(users.name):
            raise StartupError(
                f"{shown} holds no collab-server tables: check --db-url/--config; "
                "--create makes them"
            )
    except DBAPIError as e:
        engine.dispose()
        reason = str(e.orig).strip().splitlines()[0] if e.orig else type(e).__name__
        raise StartupError(f"cannot open the database {shown}: {reason}") from e
    return engine


class CommandGroup(Application):
    """A command made of subcommands (``collab-server token create|list|revoke``):
    run the one named, or list them and exit 1."""

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        self.print_subcommands()
        self.exit(1)
