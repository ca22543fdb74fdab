"""The failure drill at a small size (`just drill` runs it longer): the highly available stack comes up
(Patroni with etcd, HAProxy, three Kafka nodes, Redis with Sentinel, two processes of every beanpay
service), and under a payment load every part is killed in turn and healed. Each target holds: losing a
beanpay process (or restarting every API process in turn) fails no request, a crashed PostgreSQL primary
leaves writes unavailable under 15 s; and nothing is lost, credited twice, or missing from Kafka or the
merchant's webhook afterwards. The healed stack is left up for the region drill, which loses it whole next
(tests/drills/conftest.py wipes every region at the end)."""

from __future__ import annotations

import pytest

from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack.ha import stack as ha
from beanpay.deploy.drills import failover, region


@pytest.fixture(scope="module")
def ha_stack(regions: Settings) -> Settings:
    settings = load_settings()  # the HA stack's own cluster and brokers, not the session's test database
    region.wipe(settings)  # a fresh cluster: one left from an earlier run may follow a chain anvil no longer has
    ha.up(settings)
    return settings


@pytest.mark.timeout(1800)
async def test_every_part_fails_in_turn_and_no_payment_is_lost(ha_stack: Settings,
                                                              healed_region_a: dict[str, bool]) -> None:
    report = await failover.run(ha_stack, rate=2.0, settle=2.0, observe=5.0, only=[])
    by_fault = {f.fault: f for f in report.faults}
    assert set(by_fault) == {f.name for f in failover.faults(ha_stack)}
    missed = [f for f in report.faults if not f.met]
    assert not missed, "\n".join(failover.report_lines(report))
    assert by_fault["postgres-primary"].failed_window_s < 15
    assert all(by_fault[f"beanpay-{s}"].failed_requests == 0 for s in failover.BEANPAY_TARGETS)
    assert by_fault["rolling-restart-api"].failed_requests == 0
    held = report.invariants
    assert held.hold and held.paid == report.orders > 0, held
    assert not (report.kafka.missing or report.kafka.reordered or report.kafka.undelivered), report.kafka
    healed_region_a["up"] = True  # passed: its healed stack may be the region drill's region A
