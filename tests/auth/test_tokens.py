"""API tokens: shown once, stored hashed, revocable, usable from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from auth.identity import Credentials
from auth.schema import api_tokens, metadata
from auth.tokens import TokenIdentityProvider, Tokens
from collab_server.database import open_engine


def make_tokens(tmp_path: Path) -> Tokens:
    engine = open_engine(f"sqlite:///{tmp_path / 'collab.db'}")
    metadata.create_all(engine)
    return Tokens(engine)


async def test_token_identifies_its_user_until_revoked(tmp_path: Path) -> None:
    tokens = make_tokens(tmp_path)
    token = tokens.create("alice", note="laptop")
    provider = TokenIdentityProvider(tokens)
    user = await provider.identify(Credentials({"Authorization": f"token {token}"}))
    assert user is not None and user.name == "alice"
    assert await provider.identify(Credentials({}, query_token=token)) == user
    assert await provider.identify(Credentials({"Authorization": "token nope"})) is None
    assert await provider.identify(Credentials({})) is None

    [info] = tokens.list_tokens("alice")
    assert (info.username, info.note, info.prefix) == ("alice", "laptop", token[:4])
    assert info.last_used is not None
    with tokens.engine.begin() as conn:
        stored = conn.execute(select(api_tokens.c.hash)).scalar_one()
    assert token not in stored  # only the hash is kept

    assert tokens.revoke(info.id)
    assert not tokens.revoke(info.id)
    assert await provider.identify(Credentials({"Authorization": f"token {token}"})) is None


def test_cli_creates_lists_and_revokes_tokens(tmp_path: Path) -> None:
    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "collab_server", *args, f"--data-dir={tmp_path}"],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("user", "add", "bob", "--create")  # token create makes no users (a typo would)
    token = cli("token", "create", "bob").strip()
    assert len(token) == 64
    listing = cli("token", "list")
    assert "bob" in listing and token[:4] in listing and token not in listing
    assert "revoked token 1" in cli("token", "revoke", "1")
    assert "bob" not in cli("token", "list")
