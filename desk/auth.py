"""Desk users, passwords, API tokens, sessions and the login rate limit.

* Passwords are argon2id-hashed (``argon2-cffi``); a new user gets a one-time random password.
* API tokens are random (``fsd_`` + 32 bytes, URL-safe); only their sha256 is stored, so a
  database leak does not leak tokens; revoking sets ``revoked_at``.
* Sessions are signed (itsdangerous) cookie payloads ``{uid, csrf}`` with a max age; the CSRF
  token lives in the session and must come back with every state-changing request.
* :class:`LoginLimiter`: at most ``max_failures`` failed logins per user name and per client
  address in ``window_s``; pure (the clock is passed in).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

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

    def can(self, role: Role) -> bool:
        """True if this user has ``role`` or a stronger one."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=row.role)


def add_user(engine: Engine, name: str, role: Role) -> str:
    """Create ``name`` with ``role``; return its one-time password (shown once, never stored)."""
    if role not in ROLES:
        raise DeskError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")
    if (
        not name
        or len(name) > 64
        or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise DeskError(f"bad user name {name!r}: 1-64 letters, digits, '.', '-' or '_'")
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


def set_user(
    engine: Engine, name: str, *, role: Role | None = None, disabled: bool | None = None
) -> None:
    """Change a user's role and/or disable them (their sessions and tokens stop working)."""
    values: dict[str, Any] = {}
    if role is not None:
        if role not in ROLES:
            raise DeskError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")
        values["role"] = role
    if disabled is not None:
        values["disabled"] = disabled
    if not values:
        return
    with engine.begin() as conn:
        if not conn.execute(
            update(desk_users).where(desk_users.c.name == name).values(**values)
        ).rowcount:
            raise DeskError(f"no user {name!r}")


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user if ``password`` is theirs and they are enabled, else None."""
    with engine.connect() as conn:
        row = conn.execute(select(desk_users).where(desk_users.c.name == name)).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return _user(row) if row is not None and not row.disabled else None


def user_by_id(engine: Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(desk_users).where(desk_users.c.id == user_id, desk_users.c.disabled.is_(False))
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
    """Signed session payloads for the cookie (``{uid, csrf}``)."""

    def __init__(self, secret: str, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="fraudstream-desk-session")
        self.max_age_s = max_age_s

    def issue(self, user: User) -> tuple[str, str]:
        """(cookie value, CSRF token) for a fresh session of ``user``."""
        csrf = secrets.token_urlsafe(24)
        return self._serializer.dumps({"uid": user.id, "csrf": csrf}), csrf

    def read(self, cookie: str | None) -> dict[str, Any] | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and {"uid", "csrf"} <= data.keys() else None


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected and given and secrets.compare_digest(expected, given))


class LoginLimiter:
    """Failed-login counting per key (user name, client address) over a sliding window."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked(self, keys: list[str], now: float) -> bool:
        return any(len(self._recent(k, now)) >= self.max_failures for k in keys)

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            self._recent(key, now).append(now)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
