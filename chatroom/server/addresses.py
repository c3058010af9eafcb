"""This machine's LAN addresses, for ``chatroom-server --host 0.0.0.0`` (or ``::``) to print.

Found three ways, loopback excluded: every network interface's address
(Linux ``SIOCGIFADDR`` ioctl, ``/proc/net/if_inet6``), the source address the
routing table would use (a UDP socket "connected" to a documentation
address: nothing is sent), and what the host name resolves to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import sys
from pathlib import Path

#: Linux ioctl: the IPv4 address of the interface named in a ``struct ifreq``.
SIOCGIFADDR = 0x8915
#: Addresses a UDP socket is "connected" to (nothing is sent) to learn the source address
#: the routing table would use: TEST-NET-2 and the IPv6 documentation prefix.
_ROUTE_PROBES: dict[int, tuple[str, int]] = {socket.AF_INET: ("198.51.100.1", 9), socket.AF_INET6: ("2001:db8::1", 9)}


def lan_addresses(family: int = socket.AF_INET) -> list[str]:
    """This machine's addresses other machines can reach it at, sorted (``str`` each).

    *family* is ``socket.AF_INET`` (IPv4) or ``socket.AF_INET6``. Gathered
    from three sources, since none alone is reliable: every interface's
    address (Linux: ``SIOCGIFADDR`` for IPv4, ``/proc/net/if_inet6`` for
    IPv6), the source address the routing table picks for an outside
    destination (a UDP socket connect, which sends nothing), and the host
    name's resolution. Loopback, unspecified, multicast and IPv6 link-local
    addresses (unusable without a zone) are left out. Never raises.
    """
    found = _interface_addresses(family) | _route_source(family) | _resolved(family)
    usable = set()
    for text in found:
        try:
            ip = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if ip.is_loopback or ip.is_unspecified or ip.is_multicast or (ip.version == 6 and ip.is_link_local):
            continue
        if ip.version == (6 if family == socket.AF_INET6 else 4):
            usable.add(ip)
    return [str(ip) for ip in sorted(usable)]


def _interface_addresses(family: int) -> set[str]:
    if not sys.platform.startswith("linux"):
        return set()
    if family == socket.AF_INET6:
        try:
            return parse_if_inet6(Path("/proc/net/if_inet6").read_text())
        except OSError:
            return set()
    try:
        import fcntl

        names = [name for _, name in socket.if_nameindex()]
    except (ImportError, OSError):
        return set()
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            try:
                ifreq = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on this interface
                continue
            found.add(socket.inet_ntoa(ifreq[20:24]))
    return found


def parse_if_inet6(text: str) -> set[str]:
    """IPv6 addresses from the text of Linux's ``/proc/net/if_inet6`` (32 hex digits first on each line)."""
    found = set()
    for line in text.splitlines():
        digits = line.split()[0] if line.split() else ""
        if re.fullmatch(r"[0-9a-fA-F]{32}", digits):
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(digits))))
    return found


def _route_source(family: int) -> set[str]:
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(_ROUTE_PROBES[family])
            return {sock.getsockname()[0]}
    except OSError:  # no route out of this machine
        return set()


def _resolved(family: int) -> set[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM)
    except OSError:
        return set()
    return {str(info[4][0]) for info in infos}
