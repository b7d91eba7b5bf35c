"""Desk users, passwords, API tokens, sessions and the login rate limit.

* Passwords are argon2id-hashed (``argon2-cffi``); a new user gets a one-time random password.
* API tokens are random (``fsd_`` + 32 bytes, URL-safe); only their sha256 is stored, so a
  database leak does not leak tokens; revoking sets ``revoked_at``.
* Sessions are signed (itsdangerous) cookie payloads ``{uid, ep, csrf}`` with a max age; the
  CSRF token lives in the session and must come back with every state-changing request. ``ep``
  is the user's ``session_epoch`` at login, checked on every request: logout, disable, a role
  change and a password reset bump it, so every session issued before them ends server-side
  (a re-enable does not revive them). Disable, role change and password reset also revoke the
  user's bearer tokens (for good).
* :class:`LoginLimiter`: at most ``max_failures`` failed logins per user name and per client
  address in ``window_s``; pure (the clock is passed in).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from desk import params
from schemas.errors import FraudstreamError
from store.tables import desk_tokens, desk_users

Role = Literal["viewer", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "analyst", "admin")
SESSION_MAX_AGE_S = 12 * 3600
TOKEN_PREFIX = "fsd_"  # noqa: S105 (a prefix, not a secret)
_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so timing does not reveal names.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class DeskError(FraudstreamError):
    """A desk administration mistake (unknown user, duplicate name, bad role)."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    epoch: int = 0  # the user's session epoch when this was read

    def can(self, role: Role) -> bool:
        """True if this user has ``role`` or a stronger one."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=row.role, epoch=row.session_epoch)


def _good_name(name: str) -> bool:
    try:
        params.user_name("name", name)
    except params.BadParam:
        return False
    return True


def add_user(engine: Engine, name: str, role: Role) -> str:
    """Create ``name`` with ``role``; return its one-time password (shown once, never stored)."""
    if role not in ROLES:
        raise DeskError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")
    if not _good_name(name):
        raise DeskError(f"bad user name {name[:70]!r}: 1-64 letters, digits, '.', '-' or '_'")
    password = secrets.token_urlsafe(15)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(desk_users).values(
                    name=name,
                    role=role,
                    password_hash=_hasher.hash(password),
                    disabled=False,
                    created_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        raise DeskError(f"user {name!r} already exists") from None
    return password


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                desk_users.c.id,
                desk_users.c.name,
                desk_users.c.role,
                desk_users.c.disabled,
                desk_users.c.created_at,
            ).order_by(desk_users.c.name)
        )
        return [dict(r._mapping) for r in rows]


def _end_sessions(conn: Connection, user_id: int, *, tokens: bool) -> None:
    """Bump ``user_id``'s session epoch (every session issued before ends); with ``tokens``,
    also revoke every live bearer token of theirs."""
    conn.execute(
        update(desk_users)
        .where(desk_users.c.id == user_id)
        .values(session_epoch=desk_users.c.session_epoch + 1)
    )
    if tokens:
        conn.execute(
            update(desk_tokens)
            .where(desk_tokens.c.user_id == user_id, desk_tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )


def set_user(
    engine: Engine,
    name: str,
    *,
    role: Role | None = None,
    disabled: bool | None = None,
    reset_password: bool = False,
) -> str | None:
    """Change a user's role, disable / enable them, or reset their password (the new one-time
    password is returned). A disable, a role change or a reset ends every session and revokes
    every token of theirs; an enable revives none of them."""
    if role is not None and role not in ROLES:
        raise DeskError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")
    with engine.begin() as conn:
        row = conn.execute(
            select(desk_users.c.id, desk_users.c.role).where(desk_users.c.name == name)
        ).first()
        if row is None:
            raise DeskError(f"no user {name!r}")
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        password = secrets.token_urlsafe(15) if reset_password else None
        if password is not None:
            values["password_hash"] = _hasher.hash(password)
        if values:
            conn.execute(update(desk_users).where(desk_users.c.id == row.id).values(**values))
        if disabled or reset_password or (role is not None and role != row.role):
            _end_sessions(conn, row.id, tokens=True)
    return password


def end_sessions(engine: Engine, user: User) -> None:
    """Logout: every session of ``user`` ends (bearer tokens stay: revoke them by id)."""
    with engine.begin() as conn:
        _end_sessions(conn, user.id, tokens=False)


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user if ``password`` is theirs and they are enabled, else None."""
    row = None
    if _good_name(name):
        with engine.connect() as conn:
            row = conn.execute(select(desk_users).where(desk_users.c.name == name)).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return _user(row) if row is not None and not row.disabled else None


def user_by_session(engine: Engine, user_id: int, epoch: int) -> User | None:
    """The enabled user of a session issued in their current ``epoch`` (else None: it ended)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(desk_users).where(
                desk_users.c.id == user_id,
                desk_users.c.disabled.is_(False),
                desk_users.c.session_epoch == epoch,
            )
        ).first()
    return _user(row) if row else None


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_token(engine: Engine, user_name: str, token_name: str = "api") -> tuple[int, str]:  # noqa: S107
    """A new bearer token for ``user_name``: (token id, the token — shown once)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        user_id = conn.execute(
            select(desk_users.c.id).where(desk_users.c.name == user_name)
        ).scalar()
        if user_id is None:
            raise DeskError(f"no user {user_name!r}")
        token_id = conn.execute(
            insert(desk_tokens)
            .values(
                user_id=user_id,
                name=token_name[:64],
                token_sha256=_sha256(token),
                created_at=datetime.now(UTC),
            )
            .returning(desk_tokens.c.id)
        ).scalar_one()
    return int(token_id), token


def revoke_token(engine: Engine, token_id: int, *, owner: User | None = None) -> bool:
    """Revoke token ``token_id`` (only the owner's unless ``owner`` is None or an admin)."""
    query = update(desk_tokens).where(
        desk_tokens.c.id == token_id, desk_tokens.c.revoked_at.is_(None)
    )
    if owner is not None and not owner.can("admin"):
        query = query.where(desk_tokens.c.user_id == owner.id)
    with engine.begin() as conn:
        return bool(conn.execute(query.values(revoked_at=datetime.now(UTC))).rowcount)


def user_by_token(engine: Engine, token: str) -> User | None:
    """The enabled user a live (unrevoked) bearer token belongs to."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    query = (
        select(desk_users)
        .join(desk_tokens, desk_tokens.c.user_id == desk_users.c.id)
        .where(
            desk_tokens.c.token_sha256 == _sha256(token),
            desk_tokens.c.revoked_at.is_(None),
            desk_users.c.disabled.is_(False),
        )
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _user(row) if row else None


class Sessions:
    """Signed session payloads for the cookie (``{uid, ep, csrf}``)."""

    def __init__(self, secret: str, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="fraudstream-desk-session")
        self.max_age_s = max_age_s

    def issue(self, user: User) -> tuple[str, str]:
        """(cookie value, CSRF token) for a fresh session of ``user``."""
        csrf = secrets.token_urlsafe(24)
        return self._serializer.dumps({"uid": user.id, "ep": user.epoch, "csrf": csrf}), csrf

    def read(self, cookie: str | None) -> dict[str, Any] | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        if not (isinstance(data, dict) and {"uid", "ep", "csrf"} <= data.keys()):
            return None
        return data if type(data["uid"]) is int and type(data["ep"]) is int else None


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison (as bytes: ``compare_digest`` refuses non-ASCII text)."""
    if not (expected and given):
        return False
    return secrets.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


class LoginLimiter:
    """Failed-login counting per key (user name, client address) over a sliding window. Keys
    whose failures have all left the window are forgotten, so memory is bounded by the failures
    of one window however many names or addresses an attacker rotates through."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._sweep_at = 1024  # sweep when this many keys are held (amortised: doubles)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked(self, keys: list[str], now: float) -> bool:
        return any(len(self._recent(k, now)) >= self.max_failures for k in keys)

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
        if len(self._failures) >= self._sweep_at:
            for key in [k for k, t in self._failures.items() if t[-1] <= now - self.window_s]:
                del self._failures[key]
            self._sweep_at = max(1024, 2 * len(self._failures))

    def held(self) -> int:
        """How many keys are remembered (memory bound check)."""
        return len(self._failures)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
