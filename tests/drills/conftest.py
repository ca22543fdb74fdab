"""The drills tier: whole stacks (the HA stack, region A and its standby B) brought up, killed in parts or
whole, and healed, under a payment load mined every second. `just test-lanes` runs this tier in a pytest of its own
beside the others, on chain and Lightning nodes of its own (`tests.tiers`), because its blocks and its kills
would upset a test that counts confirmations or reorgs the dev stack's chains; in one pytest with the others
(`just test`) or alone, it uses the dev stack's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack.ha.stack import NODES
from beanpay.deploy.drills import region


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> Settings:
    """The nodes the stacks follow and do not run (the chains and the Lightning pair), started if down; the
    drills' PostgreSQL, Kafka and Redis are each stack's own."""
    from beanpay.deploy.devstack import stack as devstack

    devstack.up(base_settings, NODES)
    return base_settings


@pytest.fixture(scope="session")
def healed_region_a() -> dict[str, bool]:
    """Set by the failure drill when it passed (its stack, healed, is up and current): the region drill's first
    mode may take it as region A. Never from an earlier run: a stack left from one may follow a chain anvil no
    longer has."""
    return {"up": False}


@pytest.fixture(scope="session")
def regions(stack: Settings) -> Iterator[Settings]:
    """The HA regions the drills bring up, wiped at the end (killed, not stopped in turn: what they hold is
    thrown away, about 90 s saved); the failure drill's healed stack is the region drill's first region A."""
    try:
        yield stack
    finally:
        region.wipe(load_settings())
