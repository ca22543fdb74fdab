"""`beanpay users`: accounts made and changed straight in the database, for the first operator and
for operators at a terminal. Same rules and audit rows as the API."""

from __future__ import annotations

import argparse
import getpass
import sys

import msgspec

from beanpay import db
from beanpay.api.accounts import users
from beanpay.audit import Actor
from beanpay.config import Settings
from beanpay.errors import DomainError, InvalidInput

CLI = Actor(id=None, role="operator-cli")


class UsersError(Exception):
    pass


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return str(args.password_file.read_text().splitlines()[0] if args.password_file.stat().st_size else "")
    if not sys.stdin.isatty():
        raise UsersError("no terminal to ask for the password; use --password-file")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UsersError("the passwords differ")
    return first


async def run(settings: Settings, args: argparse.Namespace) -> str:
    pool = await db.create_pool(settings)
    try:
        return await _run(pool, args)
    except InvalidInput as exc:
        raise UsersError("; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)) from None
    except DomainError as exc:
        raise UsersError(exc.message) from None
    finally:
        await pool.close()


async def _run(pool: db.Pool, args: argparse.Namespace) -> str:
    email = users.normalize_email(args.email)
    if args.action == "create":
        hashed = users.new_password_hash(_password(args), email)
        async with pool.transaction() as conn:
            user = await users.create_user(conn, email=email, password_hash=hashed, display_name=args.name,
                                           operator=args.operator, actor=CLI)
        if args.json:
            return msgspec.json.encode(user).decode()
        return f"created {'operator ' if user.operator else ''}{user.email} ({user.id})"
    async with pool.transaction() as conn:
        user_id = await users.by_email(conn, email)
        if user_id is None:
            raise UsersError(f"no account {email}")
        if args.action == "grant":
            await users.grant(conn, user_id=user_id, shop_id=args.shop, role=args.role, by=None, actor=CLI)
            return f"{email} is now {args.role} of shop {args.shop}"
        ended = await users.disable(conn, user_id)
        if ended is None:
            raise UsersError(f"{email} is already disabled")
        return f"disabled {email}; {ended} session(s) ended"
