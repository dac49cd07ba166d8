"""The webhook rules that need no database: the SSRF guard, signatures, event patterns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from engine import Refused, UrlGuard, parse_networks
from engine.rules.webhooks.events import check_patterns, matches
from engine.rules.webhooks.formats import yuan
from engine.rules.webhooks.signing import headers, new_secret


def resolving(*addresses: str) -> UrlGuard:
    return UrlGuard(resolver=lambda host, port: list(addresses))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.100.100.200",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_a_name_resolving_to_a_private_or_special_address_is_refused(address: str) -> None:
    with pytest.raises(Refused):
        resolving(address).check("https://hooks.example.org/zizhi")


def test_one_bad_address_among_good_ones_refuses_the_name() -> None:
    with pytest.raises(Refused):
        resolving("93.184.216.34", "10.0.0.1").check("https://hooks.example.org/")


def test_a_public_address_is_allowed_and_the_targets_name_it() -> None:
    (target,) = resolving("93.184.216.34").check("https://hooks.example.org:8443/x?y=1")
    assert (target.host, target.port, target.address) == (
        "hooks.example.org",
        8443,
        "93.184.216.34",
    )


def test_localhost_is_refused_unless_loopback_is_allowed() -> None:
    # The system resolver answers localhost from /etc/hosts: no traffic leaves the machine.
    with pytest.raises(Refused):
        UrlGuard().check("http://localhost:8080/hook")
    allowed = UrlGuard(allowed=parse_networks("127.0.0.0/8, ::1/128"))
    assert all(t.address in ("127.0.0.1", "::1") for t in allowed.check("http://localhost/"))


def test_an_allowed_network_exempts_only_itself() -> None:
    guard = UrlGuard(allowed=parse_networks("10.1.0.0/16"))
    guard.check("http://10.1.2.3/hook")
    with pytest.raises(Refused):
        guard.check("http://10.2.0.1/hook")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "http:///hook",
        "https://",
        "//hooks.example.org/",
        "http://hooks.example.org/#frag",
        "http://a b/",
        "",
        "http://" + "a" * 2000 + ".org/",
    ],
)
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(Refused):
        resolving("93.184.216.34").check(url)


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="10.0.0.300"):
        parse_networks("127.0.0.0/8,10.0.0.300/8")


def test_signatures_verify_with_the_reference_library_for_every_secret_given() -> None:
    old, new = new_secret(), new_secret()
    body = '{"type":"webhook.test","data":{"message":"测试"}}'
    signed = dict(headers([new, old], "msg_1", int(datetime.now(UTC).timestamp()), body))
    assert len(signed["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, signed)


def test_event_patterns() -> None:
    assert check_patterns(["project.transitioned", "ledger.*", "*"]) is None
    assert check_patterns([]) is not None
    assert check_patterns(["ledger.*.*"]) is not None
    assert check_patterns(["projects.*"]) is not None
    assert matches(["ledger.*"], "ledger.reserved")
    assert not matches(["ledger.*"], "ledgers.reserved")
    assert not matches(["project.created"], "project.transitioned")


def test_money_is_shown_in_yuan() -> None:
    assert yuan(1_234_567) == "¥12,345.67"
    assert yuan(5) == "¥0.05"
