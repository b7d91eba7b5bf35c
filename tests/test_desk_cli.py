"""``fraudstream desk user … / token …``: one-time passwords, one-line errors, revocation."""

from __future__ import annotations

import pytest

import fraudstream_cli
from desk import auth
from store.db import connect
from tests.desk_fixtures import (
    cheap_hashes,  # noqa: F401  (autouse)
)


def run(capsys, *argv):
    code = fraudstream_cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_user_and_token_commands(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'desk.db'}"
    connect(db).dispose()  # a store that exists (the desk never creates one)
    code, out, _ = run(capsys, "desk", "user", "add", "ann", "--role", "analyst", "--db", db)
    assert code == 0 and "one-time password" in out
    password = out.strip().splitlines()[-1]
    engine = connect(db)
    assert auth.authenticate(engine, "ann", password).role == "analyst"
    assert auth.authenticate(engine, "ann", password + "x") is None
    code, _, err = run(capsys, "desk", "user", "add", "ann", "--role", "viewer", "--db", db)
    assert code != 0 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, "desk", "token", "add", "ann", "--db", db)
    token = out.strip().splitlines()[-1]
    assert code == 0 and auth.user_by_token(engine, token).name == "ann"
    token_id = out.split()[1]
    assert run(capsys, "desk", "token", "revoke", token_id, "--db", db)[0] == 0
    assert auth.user_by_token(engine, token) is None
    code, _, err = run(capsys, "desk", "token", "revoke", token_id, "--db", db)
    assert code != 0 and "no live token" in err
    assert run(capsys, "desk", "user", "set", "ann", "--disable", "--db", db)[0] == 0
    assert auth.authenticate(engine, "ann", password) is None
    code, out, _ = run(capsys, "desk", "user", "list", "--db", db)
    assert "ann" in out and "disabled" in out
    engine.dispose()


def test_user_add_refuses_bad_names(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'desk.db'}"
    connect(db).dispose()
    code, _, err = run(capsys, "desk", "user", "add", "a b<script>", "--role", "admin", "--db", db)
    assert code != 0 and "bad user name" in err


@pytest.mark.parametrize("argv", [
    ("desk", "serve", "--host", "256.0.0.1", "--port", "1"),
    ("desk", "user", "add", "ann", "--role", "analyst"),
    ("desk", "user", "list"),
    ("desk", "token", "add", "ann"),
])
def test_the_desk_never_creates_a_store(tmp_path, capsys, argv):
    """A mistyped --db path is one line naming it, and no empty database appears there."""
    typo = tmp_path / "fraudstrem.db"
    code, out, err = run(capsys, *argv, "--db", f"sqlite:///{typo}")
    assert code == 2 and out == ""
    assert f"no database at {typo}" in err and len(err.strip().splitlines()) == 1
    assert not typo.exists()


def test_reset_password_prints_a_new_one_and_revokes_tokens(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'desk.db'}"
    connect(db).dispose()
    password = run(capsys, "desk", "user", "add", "ann", "--role", "analyst", "--db", db)[1]
    token = run(capsys, "desk", "token", "add", "ann", "--db", db)[1].strip().splitlines()[-1]
    code, out, _ = run(capsys, "desk", "user", "set", "ann", "--reset-password", "--db", db)
    assert code == 0 and "one-time password" in out
    engine = connect(db)
    assert auth.authenticate(engine, "ann", password.strip().splitlines()[-1]) is None
    assert auth.authenticate(engine, "ann", out.strip().splitlines()[-1]).name == "ann"
    assert auth.user_by_token(engine, token) is None
    engine.dispose()
