"""Where webhooks may go: every spelling of a private address is refused at registration."""

from __future__ import annotations

import pytest

from beanpay.engine.webhooks.egress import host_problem

REFUSED = ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0", "0.0.0.0", "localhost",
           "localhost.", "LOCALHOST", "api.localhost", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.169.254",
           "100.64.0.1", "::1", "[::1]", "::ffff:127.0.0.1", "fd00:ec2::254", "fe80::1", "224.0.0.1", "0xa9fea9fe"]


@pytest.mark.parametrize("host", REFUSED)
def test_private_hosts_are_refused_in_any_spelling(host: str) -> None:
    assert host_problem(host) is not None


@pytest.mark.parametrize("host", ["hooks.example.com", "93.184.215.14", "2606:4700::6810:84e5", "example.com."])
def test_public_hosts_and_names_are_accepted(host: str) -> None:
    assert host_problem(host) is None
