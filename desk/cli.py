"""``fraudstream desk serve | user add | user list | token add | token revoke``."""

from __future__ import annotations

import argparse
import os
from typing import Any

_DEFAULTS = argparse.ArgumentDefaultsHelpFormatter
PROXIES_ENV = "FRAUDSTREAM_DESK_TRUSTED_PROXIES"


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy database URL (default: $FRAUDSTREAM_DB_URL, else "
        "sqlite:///$FRAUDSTREAM_HOME/fraudstream.db)",
    )


def register(sub: Any) -> None:
    from store.settings import add_mature_after

    desk = sub.add_parser(
        "desk", help="the fraud-ops desk: web queue, REST API, users", formatter_class=_DEFAULTS
    )
    dsub = desk.add_subparsers(dest="desk_command", required=True, metavar="ACTION")
    serve = dsub.add_parser(
        "serve",
        help="serve the desk (web pages + REST API, docs at /docs)",
        formatter_class=_DEFAULTS,
        description="Sessions are signed with $FRAUDSTREAM_DESK_SECRET (at least 16 "
        "characters); without it an ephemeral secret is used and every session "
        "ends when the desk restarts.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument(
        "--trusted-proxies",
        metavar="ADDRS",
        default=os.environ.get(PROXIES_ENV, ""),
        help="comma-separated addresses (or CIDRs) of reverse proxies whose X-Forwarded-For / "
        "-Proto headers are believed; default none: the peer address is the client (login "
        f"limits count it). Also ${PROXIES_ENV}",
    )
    add_mature_after(serve)
    serve.add_argument(
        "--capacity",
        metavar="K",
        default=None,
        help="the team's daily capacity in cards: the dashboard's card precision CP@k counts "
        "the k cards the desk put first each day (default: $FRAUDSTREAM_DESK_CAPACITY, else 100)",
    )
    _db(serve)
    serve.set_defaults(func=run_serve)

    user = dsub.add_parser("user", help="desk users: add, list, set", formatter_class=_DEFAULTS)
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = usub.add_parser(
        "add", help="create a user; prints a one-time password", formatter_class=_DEFAULTS
    )
    add.add_argument("name", help="user name (letters, digits, '.', '-', '_')")
    add.add_argument(
        "--role",
        required=True,
        choices=("viewer", "analyst", "admin"),
        help="viewer reads; analyst also works alerts; admin also manages users",
    )
    _db(add)
    add.set_defaults(func=run_user)
    ulist = usub.add_parser("list", help="all users", formatter_class=_DEFAULTS)
    _db(ulist)
    ulist.set_defaults(func=run_user)
    uset = usub.add_parser(
        "set",
        help="change a user's role, disable them or reset their password",
        formatter_class=_DEFAULTS,
        description="A role change, --disable and --reset-password end every session of the "
        "user and revoke their bearer tokens (--enable revives none of them).",
    )
    uset.add_argument("name", help="the user to change")
    uset.add_argument("--role", choices=("viewer", "analyst", "admin"), help="new role")
    uset.add_argument("--disable", action="store_true", help="sessions and tokens stop working")
    uset.add_argument("--enable", action="store_true", help="let a disabled user log in again")
    uset.add_argument(
        "--reset-password", action="store_true", help="print a new one-time password"
    )
    _db(uset)
    uset.set_defaults(func=run_user)

    token = dsub.add_parser(
        "token", help="bearer API tokens: add, revoke", formatter_class=_DEFAULTS
    )
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    tadd = tsub.add_parser(
        "add", help="a new token for a user (printed once)", formatter_class=_DEFAULTS
    )
    tadd.add_argument("user", help="the user the token acts as")
    tadd.add_argument("--name", default="api", help="what the token is for")
    _db(tadd)
    tadd.set_defaults(func=run_token)
    trevoke = tsub.add_parser("revoke", help="revoke a token by its id", formatter_class=_DEFAULTS)
    trevoke.add_argument("id", type=int, help="the token id printed by `desk token add`")
    _db(trevoke)
    trevoke.set_defaults(func=run_token)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from desk.app import create_app
    from desk.card_precision import capacity
    from store.db import connect
    from store.settings import maturity

    mature, k = maturity(args.mature_after), capacity(args.capacity)
    engine = connect(args.db, create=False)  # the desk never creates a store
    proxies = [p.strip() for p in args.trusted_proxies.split(",") if p.strip()]
    print(f"fraudstream desk on http://{args.host}:{args.port}/ (API docs at /docs); "
          f"counts {mature.describe()}; card precision for a capacity of {k} cards a day",
          flush=True)
    uvicorn.run(
        create_app(engine, mature=mature, capacity=k),
        host=args.host,
        port=args.port,
        log_level="warning",
        server_header=False,
        # Forwarded headers are believed only from the proxies the operator names (uvicorn's
        # own default trusts them from 127.0.0.1: anyone on the host could pick their address).
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    return 0


def run_user(args: argparse.Namespace) -> int:
    from desk import auth
    from store.db import connect

    engine = connect(args.db, create=False)  # the desk never creates a store
    if args.user_command == "list":
        for u in auth.list_users(engine):
            state = " (disabled)" if u["disabled"] else ""
            print(f"{u['name']:<20} {u['role']:<8}{state}")
        return 0
    if args.user_command == "set":
        disabled = True if args.disable else False if args.enable else None
        password = auth.set_user(
            engine,
            args.name,
            role=args.role,
            disabled=disabled,
            reset_password=args.reset_password,
        )
        print(f"user {args.name} updated")
        if password is not None:
            print("new one-time password (shown only now):")
            print(password)
        return 0
    password = auth.add_user(engine, args.name, args.role)
    print(f"user {args.name} ({args.role}) created; one-time password (shown only now):")
    print(password)
    return 0


def run_token(args: argparse.Namespace) -> int:
    from desk import auth
    from store.db import connect

    engine = connect(args.db, create=False)
    if args.token_command == "revoke":  # noqa: S105 (not a password)
        if not auth.revoke_token(engine, args.id):
            raise auth.DeskError(f"no live token {args.id}")
        print(f"token {args.id} revoked")
        return 0
    token_id, token = auth.add_token(engine, args.user, args.name)
    print(f"token {token_id} for {args.user} (shown only now; send as 'Authorization: Bearer …'):")
    print(token)
    return 0
