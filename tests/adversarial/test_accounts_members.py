"""A shop's people turn on each other: a manager demotes and then removes the owner, two owners demote each
other at once, an owner demoted a moment ago acts on the role the request was let in with, and a person who
made an API key leaves (or is demoted, or disabled) and keeps acting through the key. Roles change only
downwards from who may give them, a shop always keeps an owner, and a key acts only while its maker could
still make it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from beanpay.config import Settings
from tests import secrets_watch
from tests.conftest import Tokens
from tests.harness.accounts import PASSWORD, Person, make_app, shop_with


async def roles(owner: Person, shop_id: str) -> dict[str, str]:
    resp = await owner.call("GET", f"/v1/shops/{shop_id}/members")
    assert resp.status == 200, await resp.text()
    return {m["user_id"]: m["role"] for m in await resp.json()}


async def test_a_manager_can_neither_demote_nor_remove_an_owner(settings: Settings, aiohttp_client: Any,
                                                                tokens: Tokens, db: Any) -> None:
    """Attack: at a shop with two owners (so neither is the last), a manager changes an owner's role to staff
    (a role a manager may give), then removes the now-staff owner. Must hold: a manager changes and removes
    only staff; the owner stays owner."""
    api = await make_app(settings, aiohttp_client)
    shop_id, (owner, _, manager, staff) = await shop_with(api, tokens, db, "owner", "owner", "manager", "staff")
    owner_at = f"/v1/shops/{shop_id}/members/{owner.user_id}"

    demoted = await manager.call("PUT", owner_at, json={"role": "staff"})
    assert demoted.status == 403, await demoted.text()
    assert (await manager.call("DELETE", owner_at)).status == 403
    assert (await roles(owner, shop_id))[owner.user_id] == "owner"
    # nor a fellow manager, nor themselves upwards
    assert (await manager.call("PUT", f"/v1/shops/{shop_id}/members/{manager.user_id}",
                               json={"role": "owner"})).status == 403
    # what a manager may do: staff stays staff, and staff can be removed
    staff_at = f"/v1/shops/{shop_id}/members/{staff.user_id}"
    assert (await manager.call("PUT", staff_at, json={"role": "staff"})).status == 200
    assert (await manager.call("DELETE", staff_at)).status == 204


async def test_two_owners_demoting_each_other_at_once_leave_an_owner(settings: Settings, aiohttp_client: Any,
                                                                     tokens: Tokens, db: Any) -> None:
    """Attack: each of a shop's two owners demotes the other at the same moment (each check sees the other
    still owner). Must hold: at every shop one owner is left; the other demotion is refused (409, or 403 when
    the loser is already staff by the time it is judged)."""
    api = await make_app(settings, aiohttp_client)
    shops = [await shop_with(api, tokens, db, "owner", "owner") for _ in range(8)]

    async def duel(shop_id: str, a: Person, b: Person) -> list[int]:
        staff = {"role": "staff"}
        answers = await asyncio.gather(a.call("PUT", f"/v1/shops/{shop_id}/members/{b.user_id}", json=staff),
                                       b.call("PUT", f"/v1/shops/{shop_id}/members/{a.user_id}", json=staff))
        return sorted(r.status for r in answers)

    outcomes = await asyncio.gather(*(duel(shop_id, a, b) for shop_id, (a, b) in shops))
    left = [await db.fetchval("SELECT count(*) FROM shop_grants WHERE shop_id = $1::uuid AND role = 'owner'", shop_id)
            for shop_id, _ in shops]
    assert left == [1] * len(shops), (left, outcomes)
    assert all(first == 200 and second in (403, 409) for first, second in outcomes), outcomes


async def test_an_api_key_stops_when_its_maker_could_no_longer_make_it(settings: Settings, aiohttp_client: Any,
                                                                      tokens: Tokens, db: Any) -> None:
    """Attack: an owner makes an API key, is then demoted to manager, removed from the shop, or disabled, and
    goes on acting for the shop with the key. Must hold: the key acts only while its maker still holds
    api-keys:manage and every permission of the key on each of its shops; the other owner's keys go on."""
    api = await make_app(settings, aiohttp_client)
    shop_id, (first, second, third) = await shop_with(api, tokens, db, "owner", "owner", "owner")
    supplies = f"/v1/shops/{shop_id}/supplies"

    async def key_of(person: Person) -> dict[str, str]:
        made = await person.call("POST", "/v1/api-keys", json={"name": "till", "permissions": ["supplies:read"],
                                                               "shop_ids": [shop_id]})
        assert made.status == 201, await made.text()
        key = (await made.json())["key"]
        secrets_watch.watch(key)
        return {"Authorization": f"Bearer {key}"}

    keys = {p.user_id: await key_of(p) for p in (first, second, third)}
    for key in keys.values():
        assert (await api.get(supplies, headers=key)).status == 200  # each key is cached now

    demoted = await first.call("PUT", f"/v1/shops/{shop_id}/members/{second.user_id}", json={"role": "manager"})
    assert demoted.status == 200
    assert (await api.get(supplies, headers=keys[second.user_id])).status == 401
    removed = await first.call("DELETE", f"/v1/shops/{shop_id}/members/{third.user_id}")
    assert removed.status == 204
    assert (await api.get(supplies, headers=keys[third.user_id])).status == 401
    assert (await api.get(supplies, headers=keys[first.user_id])).status == 200

    disabled = await api.post(f"/v1/users/{first.user_id}/disable", headers=tokens.operator)
    assert disabled.status == 200
    assert (await api.get(supplies, headers=keys[first.user_id])).status == 401


async def test_a_removed_manager_does_not_come_back_through_their_own_invitation(
        settings: Settings, aiohttp_client: Any, tokens: Tokens, db: Any) -> None:
    """Attack: a manager about to be removed invites an address of their own as staff and accepts it once
    removed, back at the shop. Must hold: removing someone (or lowering their role) withdraws the open
    invitations they made there for roles they may no longer give."""
    api = await make_app(settings, aiohttp_client)
    shop_id, (owner, manager) = await shop_with(api, tokens, db, "owner", "manager")
    spare = f"{uuid.uuid4().hex[:10]}@example.com"
    made = await manager.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": spare, "role": "staff"})
    assert made.status == 201, await made.text()
    token = (await made.json())["token"]
    assert (await owner.call("DELETE", f"/v1/shops/{shop_id}/members/{manager.user_id}")).status == 204

    back = await api.post("/v1/invitations/accept", json={"token": token, "password": PASSWORD})
    assert back.status == 410, await back.text()
    assert spare not in {m["email"] for m in await (await owner.call("GET", f"/v1/shops/{shop_id}/members")).json()}


async def test_an_owner_demoted_a_moment_ago_changes_no_other_owner(settings: Settings, aiohttp_client: Any,
                                                                   tokens: Tokens, db: Any) -> None:
    """Attack: at a shop with three owners, the first demotes the second to staff while the second, at the same
    moment, removes the third and makes their own manager owner: the second's requests were let in as an
    owner (who they were when the request came), and judged after the demotion had committed. Must hold:
    a role change is judged by the actor's role in the rows it locked, not the one cached for the request:
    both of the second's changes are refused (403), the third stays owner, the manager stays manager."""
    api = await make_app(settings, aiohttp_client)
    shop_id, (first, second, third, manager) = await shop_with(api, tokens, db, "owner", "owner", "owner", "manager")
    for person in (first, second):  # each principal is resolved (and cached) as an owner
        assert (await person.call("GET", f"/v1/shops/{shop_id}/members")).status == 200

    async def waiting_for_the_lock(count: int) -> None:
        for _ in range(200):
            waiting = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%FROM shop_grants%FOR UPDATE%'")
            if waiting >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {count} requests waiting on the shop's roles")

    async with db.raw.acquire() as gate:  # holds the shop's roles so the requests queue in a known order
        hold = gate.transaction()
        await hold.start()
        await gate.execute("SELECT 1 FROM shop_grants WHERE shop_id = $1 FOR UPDATE", uuid.UUID(shop_id))
        demotion = asyncio.create_task(first.call("PUT", f"/v1/shops/{shop_id}/members/{second.user_id}",
                                                  json={"role": "staff"}))
        await waiting_for_the_lock(1)
        removal = asyncio.create_task(second.call("DELETE", f"/v1/shops/{shop_id}/members/{third.user_id}"))
        await waiting_for_the_lock(2)
        promotion = asyncio.create_task(second.call("PUT", f"/v1/shops/{shop_id}/members/{manager.user_id}",
                                                    json={"role": "owner"}))
        await waiting_for_the_lock(3)
        await hold.rollback()
    demoted, removed, promoted = await asyncio.gather(demotion, removal, promotion)
    assert demoted.status == 200, await demoted.text()
    assert removed.status == 403, await removed.text()
    assert promoted.status == 403, await promoted.text()
    now = await roles(first, shop_id)
    assert (now[second.user_id], now[third.user_id], now[manager.user_id]) == ("staff", "owner", "manager")
