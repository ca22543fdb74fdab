"""An inviter takes the invitation for themselves: accepts an invitation made for an email they do not own
(becoming that person), also in production without a mail server, or guesses the password of an existing
account through the acceptance, which had no throttle. Acceptance must prove the email: into a new account,
by the token that only the email received; into an existing account, by being signed in as it (or its
password, under the login throttle)."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from beanpay.config import Settings
from tests.conftest import Tokens
from tests.harness.accounts import PASSWORD, WRONG, Person, make_app, new_account, shop_with


class Mailbox:
    """An SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def text(self, to: str) -> str:
        found = [m for m in self.messages if m["To"] == to]
        assert len(found) == 1, [m["To"] for m in self.messages]
        part = found[0].get_body(("plain",)) if found[0].is_multipart() else found[0]
        return str(part.get_payload(decode=True).decode())


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


async def test_the_inviter_never_holds_the_token_of_a_new_account(settings: Settings, aiohttp_client: Any,
                                                                 tokens: Tokens, db: Any, mailbox: Mailbox) -> None:
    """Attack: a shop's owner invites an address they do not own and accepts the invitation with the token
    the answer showed them, so an account of that email (at the role they chose) is theirs. Must hold: with
    a mail server configured the token goes to the email only; nothing the inviter saw accepts it."""
    api = await make_app(settings, aiohttp_client, smtp_host="127.0.0.1", smtp_port=mailbox.port)
    shop_id, (owner,) = await shop_with(api, tokens, db, "owner")
    victim = f"{uuid.uuid4().hex[:10]}@example.com"
    made = await owner.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": victim, "role": "staff"})
    assert made.status == 201, await made.text()
    seen = await made.text()
    for guess in set(re.findall(r"[A-Za-z0-9_-]{20,100}", seen)):
        taken = await api.post("/v1/invitations/accept", json={"token": guess, "password": PASSWORD})
        assert taken.status != 200, f"the inviter accepted with {guess!r} from the answer"

    token = re.search(r"/invitations/([A-Za-z0-9_-]{20,100})", mailbox.text(victim))
    assert token is not None
    assert token.group(1) not in seen
    accepted = await api.post("/v1/invitations/accept", json={"token": token.group(1), "password": PASSWORD})
    assert accepted.status == 200, await accepted.text()
    assert (await accepted.json())["created_account"] is True


async def test_an_existing_account_is_joined_only_by_its_owner(settings: Settings, aiohttp_client: Any,
                                                              tokens: Tokens, db: Any) -> None:
    """Attack: a shop's owner invites the email of someone else's existing account and, holding the token,
    guesses that account's password through the acceptance, 20 guesses at once (the login throttle did not
    apply there). Must hold: the guesses fall under the login throttle (at most 5 judged from one address);
    the account's owner accepts by being signed in, without sending the password again."""
    api = await make_app(settings, aiohttp_client, rate_limit_logins=5)
    shop_id, (owner,) = await shop_with(api, tokens, db, "owner")
    victim_email, _ = await new_account(api, tokens)
    made = await owner.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": victim_email, "role": "staff"})
    token = (await made.json())["token"]

    guesses = await asyncio.gather(*(owner.call("POST", "/v1/invitations/accept", json={"token": token,
                                                                                       "password": WRONG})
                                     for _ in range(20)))
    statuses = sorted(g.status for g in guesses)
    assert statuses.count(429) >= 15 and all(s in (422, 429) for s in statuses), statuses

    victim = Person(api)
    assert (await victim.login(victim_email)).status == 200
    joined = await victim.call("POST", "/v1/invitations/accept", json={"token": token})
    assert joined.status == 200, await joined.text()
    assert (await joined.json())["created_account"] is False
    members = await (await owner.call("GET", f"/v1/shops/{shop_id}/members")).json()
    assert {m["email"]: m["role"] for m in members}[victim_email] == "staff"


async def test_in_production_an_invitation_never_shows_its_token(settings: Settings, aiohttp_client: Any,
                                                                 tokens: Tokens, db: Any) -> None:
    """Attack: a production deployment without a mail server (BEANPAY_SMTP_HOST unset): the inviter was shown
    the invitation's token, accepted it and became the invitee. Must hold: in prod, without mail, no
    invitation is made (503 naming BEANPAY_SMTP_HOST) and nothing is kept; dev and test still show the link."""
    api = await make_app(settings, aiohttp_client)
    shop_id, (owner,) = await shop_with(api, tokens, db, "owner")
    victim = f"{uuid.uuid4().hex[:10]}@example.com"
    owner.api = await make_app(settings, aiohttp_client, env="prod", smtp_host=None)
    made = await owner.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": victim, "role": "staff"})
    assert made.status == 503, await made.text()
    assert "BEANPAY_SMTP_HOST" in (await made.json())["error"]["message"]
    assert await db.fetchval("SELECT count(*) FROM invitations WHERE email = $1", victim) == 0

    owner.api = api  # env test: the link is shown, for the inviter to pass on
    shown = await owner.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": victim, "role": "staff"})
    assert shown.status == 201 and (await shown.json())["delivery"] == "shown"
