"""The SSRF guard: where a webhook may be sent.

Only ``http`` and ``https`` URLs, and only to public addresses: a host that is, or resolves
to, a loopback, private, link-local, multicast, reserved, unspecified or cloud-metadata
address is refused — unless the address lies in one of the allowed networks (an operator's
``ZIZHI_WEBHOOK_ALLOWED_NETWORKS``). The guard runs when a subscription is made and again at
every send, on the addresses the sender then connects to (it connects to the very address
checked, so a name that resolves differently the second time gains nothing).
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH = 2000
# Cloud metadata services that sit on ordinary-looking addresses.
_METADATA = [
    ipaddress.ip_network(n)
    for n in ("169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32")
]


# Controls, format characters (zero-width space, BOM, bidi marks) and separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


class Refused(ValueError):
    """The URL or address may not be sent to; the message is a sentence in Chinese."""


def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"127.0.0.0/8, 10.1.0.0/16"`` → networks; a bad CIDR is a ValueError naming it."""
    networks = []
    for part in text.split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"not a network in CIDR form: {part.strip()!r}") from None
    return tuple(networks)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to call the host."""

    url: SplitResult
    host: str
    port: int
    address: str


@dataclass(frozen=True)
class UrlGuard:
    allowed: tuple[Network, ...] = ()
    resolver: Resolver = field(default=system_resolver)

    def parse(self, url: str) -> tuple[SplitResult, str, int]:
        """Syntax only: scheme, host, port; refuses what no webhook URL looks like."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise Refused(f"地址必须是不超过 {MAX_URL_LENGTH} 个字符的 http(s) 地址")
        if any(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in url):
            raise Refused("地址不能含空白、控制字符或不可见字符")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Refused("地址格式无效") from None
        if parts.scheme not in ("http", "https"):
            raise Refused("地址只能以 http:// 或 https:// 开头")
        host = parts.hostname
        if not host:
            raise Refused("地址缺少主机名")
        if parts.username is not None or parts.password is not None:
            raise Refused("地址不能含用户名或密码")
        if parts.fragment:
            raise Refused("地址不能含 # 片段")
        try:
            host.encode("idna")
        except UnicodeError:
            raise Refused("主机名无效") from None
        return parts, host, port or (443 if parts.scheme == "https" else 80)

    def check(self, url: str) -> list[Target]:
        """Every address the URL's host resolves to, each allowed; else Refused."""
        parts, host, port = self.parse(url)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [
                    ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host, port)
                ]
            except (OSError, UnicodeError, ValueError):
                raise Refused(f"无法解析主机名 {host}") from None
        if not addresses:
            raise Refused(f"无法解析主机名 {host}")
        for address in addresses:
            self.check_address(address)
        return [Target(parts, host, port, str(a)) for a in addresses]

    def check_address(self, address: Address) -> None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return
        if _forbidden(address):
            raise Refused(f"不允许向内网、本机或保留地址 {address} 推送")


def _forbidden(address: Address) -> bool:
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
        or any(address in network for network in _METADATA)
    )


def allowed_text(networks: Iterable[Network]) -> str:
    return ", ".join(str(n) for n in networks)
