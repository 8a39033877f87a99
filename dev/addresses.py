"""Whether a URL's host is this machine, and the address a local LiveKit gives browsers for media.

`livekit-server --dev` (v1.13.5) binds its signalling to loopback and, with no `node_ip`,
takes the first IPv4 address of a non-loopback interface as its node IP (loopback only
when there is nothing else: `rtcconfig.GetLocalIPAddresses`). `node_ip()` makes the same
choice, explicitly, so the generated config names it: a browser on this machine reaches
its own interface's address through the kernel's local route, so media never leaves
the machine, and Chromium gathers ICE candidates on that interface (it gathers none on
loopback alone).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

import psutil  # a livekit-agents dependency; the worker's load function uses it too

LOOPBACK = "127.0.0.1"


def resolve(host: str) -> list[str]:
    """The addresses `host` resolves to, IPv4 first; empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return sorted(found, key=lambda ip: ipaddress.ip_address(ip).version)


def is_this_machine(ip: str) -> bool:
    """Whether `ip` is a loopback address or one of this machine's own (it can be bound)."""
    address = ipaddress.ip_address(ip)
    if address.is_loopback:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((ip, 0))
        except OSError:
            return False
    return True


def local_address(host: str) -> str | None:
    """The first address of `host` that is this machine's, or None when `host` is elsewhere.

    A host that does not resolve counts as elsewhere: nothing can be started for it here.
    """
    return next((ip for ip in resolve(host) if is_this_machine(ip)), None)


def node_ip(url_address: str) -> str:
    """The address LiveKit hands clients for media, for a server whose URL is at `url_address`.

    A URL on one of this machine's interfaces is used as it is. For a loopback URL, as
    `livekit-server --dev` does: the first IPv4 address of a non-loopback interface that
    is up (link-local addresses skipped), else loopback.
    """
    if not ipaddress.ip_address(url_address).is_loopback:
        return url_address
    with contextlib.suppress(OSError):
        stats = psutil.net_if_stats()
        for name, addresses in psutil.net_if_addrs().items():
            if name in stats and not stats[name].isup:
                continue
            for entry in addresses:
                if entry.family != socket.AF_INET:
                    continue
                ip = ipaddress.ip_address(entry.address)
                if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                    return entry.address
    return LOOPBACK
