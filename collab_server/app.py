"""The ``collab-server`` command: configuration -> services -> routes -> listen.

Configuration comes, in increasing priority, from defaults that need nothing
else, a ``collab_server_config.py`` file, and ``--Class.trait=value`` flags
(or the short aliases below), as in Jupyter Server and JupyterHub.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib.metadata
import logging
import logging.config
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from traitlets import (
    Bool,
    Dict,
    Enum,
    Float,
    Integer,
    List,
    Set,
    TraitError,
    Type,
    Unicode,
    default,
    observe,
    validate,
)
from traitlets.config import Application, Configurable

from auth.authenticator import Authenticator
from auth.oauth import GenericOIDCAuthenticator, GitHubAuthenticator
from auth.pam import PAMAuthenticator
from kernels.pool import KernelPool

from crdt.room import RoomSettings

from .datalock import DataDirLock
from .errors import StartupError
from .logs import APP_LOGGER, DATE_FORMAT, LOG_STYLES, TEXT_FORMAT, logging_config
from .proxies import TrustedProxies
from .routes import make_app
from .services import Services, Settings
from .tls import TLSConfigError, server_context

log = logging.getLogger("collab_server")

MiB = 1024 * 1024


class ServerConfig(Configurable):
    """Settings shared by the server and its admin subcommands."""

    config_file = Unicode(
        "collab_server_config.py",
        config=True,
        help="Configuration file to load. The default one may be absent; one named with "
        "--config must exist.",
    )
    root_dir = Unicode(
        "notebooks", config=True, help="Folder holding the notebooks (created if missing)."
    )
    data_dir = Unicode(
        "data",
        config=True,
        help="Folder for the server's own files: SQLite databases and checkpoints.",
    )
    db_url = Unicode(
        "",
        config=True,
        help="SQLAlchemy URL of the main database (users, tokens, notebook ids). "
        "Default: a SQLite file in data_dir. PostgreSQL: postgresql+psycopg://user@host/db.",
    )
    store_url = Unicode(
        "",
        config=True,
        help="SQLAlchemy URL of the document update store. Default: its own SQLite file "
        "in data_dir when db_url is SQLite, else db_url.",
    )
    sqlite_synchronous = Unicode(
        "NORMAL",
        config=True,
        help="SQLite 'synchronous' pragma. NORMAL survives a crash of the server process; "
        "FULL also survives power loss.",
    )

    tutor_groups = Dict(
        key_trait=Unicode(),
        value_trait=List(Unicode()),
        config=True,
        help="Tutor groups: {'tutors': ['students-a', 'students-b']} lets members of the group "
        "'tutors' watch, read-only, every notebook of the members of those student groups.",
    )
    session_days = Float(14.0, config=True, help="Days a login session lasts.")
    executions_url = Unicode(
        "",
        config=True,
        help="SQLAlchemy URL of the execution log. Default: its own SQLite file in data_dir "
        "when db_url is SQLite, else db_url.",
    )

    def settings(self) -> Settings:
        return Settings(
            root_dir=Path(self.root_dir).absolute(),
            data_dir=Path(self.data_dir).absolute(),
            db_url=self.db_url,
            store_url=self.store_url,
            sqlite_synchronous=self.sqlite_synchronous,
            tutor_groups={k: list(v) for k, v in self.tutor_groups.items()},
            executions_url=self.executions_url,
            session_lifetime=self.session_days * 24 * 3600,
        )


# Short names for the login methods; any Authenticator subclass may be named in full.
AUTHENTICATORS = {
    "pam": "auth.pam.PAMAuthenticator",
    "oidc": "auth.oauth.GenericOIDCAuthenticator",
    "github": "auth.oauth.GitHubAuthenticator",
}


class AuthenticatorType(Type):  # type: ignore[type-arg]
    """A login method: a short name from AUTHENTICATORS or any Authenticator subclass."""

    def validate(self, obj: Any, value: Any) -> Any:
        if isinstance(value, str):
            value = AUTHENTICATORS.get(value, value)
        return super().validate(obj, value)


DB_ALIASES = {
    "data-dir": "ServerConfig.data_dir",
    "db-url": "ServerConfig.db_url",
    "config": "ServerConfig.config_file",
}


def load_config_file(app: Application) -> None:
    """Load the configuration file named by ServerConfig.config_file; flags still win.

    The default file may be absent; one named with ``--config`` must exist. Raises
    StartupError for a missing named file or one that fails to run.
    """
    path = Path(ServerConfig(parent=app).config_file)
    if not path.exists():
        if "config_file" in (app.config.get("ServerConfig") or {}):
            raise StartupError(f"config file {path} not found")
        return
    app.raise_config_file_errors = True
    try:
        app.load_config_file(str(path.absolute()))
    except Exception as e:
        raise StartupError(f"config file {path}: {type(e).__name__}: {e}") from e
    app.update_config(app.cli_config)


def package_version() -> str:
    try:
        return importlib.metadata.version("collab-server")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0+unknown"


class CollabServer(Application):
    """A multi-user, real-time collaborative Jupyter notebook server."""

    name = "collab-server"
    description = __doc__ or ""
    version = package_version()
    classes = [
        ServerConfig,
        KernelPool,
        PAMAuthenticator,
        GenericOIDCAuthenticator,
        GitHubAuthenticator,
    ]

    aliases = {
        "ip": "CollabServer.ip",
        "port": "CollabServer.port",
        "root-dir": "ServerConfig.root_dir",
        **DB_ALIASES,
        "log-level": "Application.log_level",
    }
    flags = {
        **Application.flags,  # --show-config, --show-config-json
        "debug": ({"Application": {"log_level": logging.DEBUG}}, "Log everything."),
        "generate-config": (
            {"CollabServer": {"generate_config": True}},
            "Write a commented collab_server_config.py (or the --config file) and exit.",
        ),
        "y": ({"CollabServer": {"answer_yes": True}}, "Answer yes: overwrite the config file."),
        "force": ({"CollabServer": {"answer_yes": True}}, "Same as -y."),
    }
    subcommands = {
        "token": ("collab_server.cli_token.TokenApp", "Create, list and revoke API tokens."),
        "user": ("collab_server.cli_admin.UserApp", "Add, list, remove users; make admins."),
        "group": ("collab_server.cli_admin.GroupApp", "Create groups and manage their members."),
        "kernels": (
            "collab_server.cli_kernels.KernelsApp",
            "Register kernels from other Pythons or virtual environments.",
        ),
    }

    ip = Unicode("127.0.0.1", config=True, help="Address to listen on.")
    port = Integer(8765, config=True, help="Port to listen on (0 picks a free one).")
    save_delay = Float(
        1.0, config=True, help="Seconds after a change before the .ipynb file is written."
    )
    room_idle_timeout = Float(
        60.0, config=True, help="Seconds a notebook with nobody connected stays in memory."
    )
    disk_poll_interval = Float(
        1.0, config=True, help="Seconds between checks for .ipynb files changed by other programs."
    )
    compact_after_updates = Integer(
        1000,
        config=True,
        help="Fold a room's stored updates into a snapshot after this many (or once they "
        "outweigh the snapshot).",
    )
    compact_after_bytes = Integer(
        1 * MiB,
        config=True,
        help="Fold a room's stored updates into a snapshot once they reach this many bytes "
        "(or the snapshot's size, if larger).",
    )
    autosave_share = Float(
        0.2,
        config=True,
        help="Largest share of the wall clock that writing .ipynb files may take, for all "
        "notebooks together; busy servers save less often rather than fall behind.",
    )
    awareness_timeout = Float(
        30.0,
        config=True,
        help="Seconds without news from a client before its presence (cursor, roster entry) "
        "is dropped.",
    )
    max_awareness_state_bytes = Integer(
        64 * 1024,
        config=True,
        help="Largest presence state one client may publish, in bytes; larger ones are refused.",
    )
    live_poll_interval = Float(
        2.0,
        config=True,
        help="Seconds between checks, for open WebSockets, that sharing or accounts changed "
        "(changes made through this server are applied at once).",
    )
    kernel_pool_class = Type(
        KernelPool,
        klass=KernelPool,
        config=True,
        help="The kernel pool: where and how kernels start. A subclass can start them on "
        "other hosts (configure it in its own class section).",
    )
    max_message_size = Integer(
        128 * MiB, config=True, help="Largest WebSocket message accepted, in bytes."
    )
    max_send_buffer = Integer(
        64 * MiB,
        config=True,
        help="Bytes queued for one slow client before it is disconnected (it resyncs on reconnect).",
    )
    websocket_ping_interval = Float(
        30.0, config=True, help="Seconds between WebSocket pings that detect dead clients."
    )
    worker_processes = Integer(
        1, config=True, help="Processes that convert between .ipynb files and documents."
    )
    gc_threshold = List(
        Integer(),
        [20_000, 50, 10],
        minlen=3,
        maxlen=3,
        config=True,
        help="Python's garbage collector thresholds (gc.set_threshold). With its default, "
        "(700, 10, 10), what each of thousands of sockets holds while it waits for the next "
        "message reaches the oldest generation, whose collections then stop the server for up "
        "to a second; these let that state die young.",
    )
    max_output_bytes = Integer(
        1024 * 1024,
        config=True,
        help="Output one cell may keep in the notebook, in bytes; beyond it output is dropped "
        "and a note says how much.",
    )
    max_kept_output_bytes = Integer(
        1024 * 1024,
        min=0,
        config=True,
        help="Outputs the execution log keeps per run (bytes of their JSON; identical outputs "
        "are stored once), so notebooks rebuilt from the history have their plots and tables. "
        "An output beyond it is not kept: the rebuilt cell names its MIME types and sizes. "
        "0 keeps none.",
    )
    authenticators = List(
        AuthenticatorType(klass=Authenticator),
        ["pam"],
        config=True,
        help="Login methods offered on the login page, in order: 'pam' (unix accounts), "
        "'oidc' (any OpenID Connect provider), 'github', or the import path of an "
        "Authenticator subclass. Configure each with its own class section, e.g. "
        "c.GenericOIDCAuthenticator.issuer. [] leaves API tokens only.",
    )
    allowed_origins = Set(
        Unicode(),
        config=True,
        help="Origins (scheme://host[:port], exact match) besides the server's own from which "
        "a logged-in browser may open WebSockets, e.g. when a proxy serves the app on another "
        "host name.",
    )

    # Behind a reverse proxy, and TLS (README "Deploy").
    trusted_proxies = List(
        Unicode(),
        config=True,
        help="Addresses or CIDR networks of reverse proxies (e.g. ['127.0.0.1', '10.0.0.0/8']) "
        "whose X-Forwarded-For, X-Forwarded-Proto and X-Real-IP headers are believed; from any "
        "other peer they are ignored. X-Forwarded-For is read from the right, skipping these "
        "proxies: the first other address is the client (login throttle, logs, sessions). "
        "Empty (default): trust nobody, the TCP peer is the client.",
    )
    certfile = Unicode(
        "",
        config=True,
        help="PEM certificate (chain) file: serve HTTPS and WSS directly, TLS 1.2 or later. "
        "Not needed behind a proxy that terminates TLS.",
    )
    keyfile = Unicode(
        "", config=True, help="PEM private key file of certfile (empty: the key is in certfile)."
    )

    @validate("trusted_proxies")
    def _validate_trusted_proxies(self, proposal: Any) -> list[str]:
        entries = list(proposal["value"])
        try:
            TrustedProxies(entries)
        except ValueError as e:
            raise TraitError(f"CollabServer.trusted_proxies: {e}") from None
        return entries

    max_upload_bytes = Integer(
        64 * MiB,
        config=True,
        help="Largest file one upload may store, in bytes (at most max_message_size, the "
        "largest request the server reads).",
    )
    trash_days = Float(
        30.0,
        config=True,
        help="Days a deleted file or folder stays in its owner's trash, to be restored; then it "
        "is deleted for good. 0 deletes at once, as before.",
    )
    authenticate_metrics = Bool(
        True,
        config=True,
        help="Whether /metrics needs an admin's token or session (as JupyterHub's does). "
        "False lets anyone who can reach the server read it: only for a port that a "
        "firewall or proxy keeps to the monitoring system.",
    )

    generate_config = Bool(
        False, config=True, help="Write a commented configuration file with every option; exit."
    )
    answer_yes = Bool(
        False, config=True, help="With --generate-config, overwrite an existing file unasked."
    )
    log_style = Enum(
        LOG_STYLES,
        "text",
        config=True,
        help="Log line format for every logger: 'text' ([I 2026-12-07 23:40:01.123 "
        "collab_server] message) or 'json' (one object per line: time, level, logger, "
        "message; access lines add method, path, status, duration_ms, remote_ip).",
    )
    log_format = Unicode(
        TEXT_FORMAT, config=True, help="Format of text log lines (logging.Formatter's)."
    )
    log_datefmt = Unicode(DATE_FORMAT, config=True, help="Format of %(asctime)s in text lines.")

    @default("log_level")
    def _log_level_default(self) -> int:
        return logging.INFO

    @default("log")
    def _app_log_default(self) -> logging.Logger:
        return logging.getLogger(APP_LOGGER)  # the same logger and format as the server's

    def get_default_logging_config(self) -> dict[str, Any]:
        level = int(str(self.log_level))
        return logging_config(self.log_style, level, self.log_format, self.log_datefmt)

    @observe("log_style")
    def _log_style_changed(self, change: Any) -> None:
        logging.config.dictConfig(self.get_default_logging_config())

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        if self.subapp is None and self.generate_config:
            self.write_config_file()
            self.exit(0)
        if self.subapp is None:
            load_config_file(self)

    def write_config_file(self) -> None:
        """Write every option with its help, commented out, to ServerConfig.config_file."""
        path = Path(ServerConfig(parent=self).config_file)
        if path.exists() and not self.answer_yes:
            if not (sys.stdin.isatty() and input(f"Overwrite {path}? [y/N] ").lower() == "y"):
                raise StartupError(f"{path} exists; -y (or --force) overwrites it")
        path.write_text(self.generate_config_file() + "\n")
        print(f"wrote {path}")

    def settings(self) -> Settings:
        """The services' settings: every trait named like a settings field is passed on."""
        settings = ServerConfig(parent=self).settings()
        for name in same_names(Settings, self):
            if name != "authenticators":  # classes here, instances there
                setattr(settings, name, getattr(self, name))
        settings.room = RoomSettings(**{n: getattr(self, n) for n in same_names(RoomSettings, self)})
        settings.authenticators = [cls(parent=self) for cls in self.authenticators]
        settings.kernel_pool = self.kernel_pool_class(parent=self)
        return settings

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        logging.config.dictConfig(self.get_default_logging_config())
        asyncio.run(self.serve())

    async def serve(self) -> None:
        """Run until SIGINT or SIGTERM, then save every open notebook and exit."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Before anything starts: a bad certificate and a busy port are start-up errors.
        try:
            tls = server_context(self.certfile, self.keyfile) if self.certfile or self.keyfile else None
        except TLSConfigError as e:
            raise StartupError(str(e)) from e
        sockets = listen(self.ip, self.port)
        data_dir = Path(ServerConfig(parent=self).data_dir).absolute()
        async with DataDirLock(data_dir), Services(self.settings()) as services:
            app = make_app(
                services,
                max_send_buffer=self.max_send_buffer,
                allowed_origins=frozenset(self.allowed_origins),
                trusted_proxies=self.trusted_proxies,
                websocket_max_message_size=self.max_message_size,
                websocket_ping_interval=self.websocket_ping_interval,
            )
            server = HTTPServer(app, max_body_size=self.max_message_size, ssl_options=tls)
            server.add_sockets(sockets)
            port = sockets[0].getsockname()[1]
            tune_gc(self.gc_threshold)
            scheme = "https" if tls else "http"
            print(f"collab-server listening on {scheme}://{self.ip}:{port}/", flush=True)
            await stop.wait()
            log.info("shutting down: saving open notebooks")
            server.stop()
            await server.close_all_connections()


def listen(ip: str, port: int) -> list[socket.socket]:
    """Bound listening sockets; StartupError if the address is taken or not ours."""
    try:
        return bind_sockets(port, ip)
    except OSError as e:
        reason = e.strerror or str(e)
        raise StartupError(f"cannot listen on {ip}:{port}: {reason}") from e


def same_names(cls: type, app: Configurable) -> list[str]:
    """Fields of a settings dataclass that ``app`` has a trait for."""
    traits = app.trait_names(config=True)
    return [f.name for f in dataclasses.fields(cls) if f.name in traits]


def tune_gc(threshold: list[int]) -> None:
    """Leave what startup made out of every later collection, then set the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)


def main(argv: list[str] | None = None) -> None:
    """The ``collab-server`` command. Start-up errors are one line on stderr and exit 1."""
    try:
        try:
            CollabServer.launch_instance(argv)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can still be caught
    except StartupError as e:
        print(f"collab-server: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C before the server's own handler is installed
        sys.exit(128 + signal.SIGINT)
    except BrokenPipeError:
        # The reader went away (`collab-server --help-all | head`): stop quietly, as a
        # program killed by SIGPIPE does, without a second error when Python flushes
        # stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)


if __name__ == "__main__":
    main()
