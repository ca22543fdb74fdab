"""The restore drill at a small size (`just restore-drill` runs it larger): a cluster of its own archived
by pgBackRest, orders paid before and after a target time on anvil, the cluster lost and restored to that
time, and beanpay on the copy finding every payment made after it again."""

from __future__ import annotations

import pytest

from beanpay.config import Settings
from beanpay.deploy.drills import restore

pytest_plugins = ["tests.integration.engine_support"]


@pytest.mark.timeout(600)
async def test_a_restore_to_a_point_in_time_finds_every_later_payment_again(chain_settings: Settings) -> None:
    report = await restore.run(chain_settings, orders=6, keep=False)
    assert report.late_order_absent, "an order placed after the target survived the restore"
    assert report.after_target_pending_on_restore == report.paid_after_target == 3  # the copy is as at T
    assert report.checkpoint_restored == report.checkpoint_at_target
    assert report.checkpoint_before_loss is not None and report.checkpoint_at_target is not None
    assert report.checkpoint_before_loss > report.checkpoint_at_target  # the later payments' blocks came after T
    held = report.invariants
    assert (held.paid, held.confirmed) == (6, 6) and held.hold, held
    assert restore.passed(report)
