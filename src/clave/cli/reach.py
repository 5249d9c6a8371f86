"""Who can use an invitation: a relay on this machine or a private network serves only
those who can reach it. ``clave meet`` says so, and how to make a link that works."""

from __future__ import annotations

import ipaddress

from ..meeting.link import is_loopback

LOCAL_ONLY = (
    "warning: this invitation works only on this machine: its relay is on {host}. "
    "To invite others, run a relay they can reach (`clave serve --host 0.0.0.0 "
    "--tls-cert FILE --tls-key FILE`, see docs/OPERATORS.md) and start the meeting "
    "with `clave meet --relay https://HOST:PORT`"
)
PRIVATE_ONLY = (
    "warning: this invitation works only inside your local network: its relay is on "
    "the private address {host}. For people elsewhere, use a relay with a public name "
    "and TLS (`clave meet --relay https://HOST:PORT`, see docs/OPERATORS.md)"
)


def reach_warning(host: str) -> str | None:
    """A one-line warning if a relay at ``host`` is reachable only from this machine or
    a private network, else None (a public address or a DNS name)."""
    name = host.strip("[]").lower()
    if is_loopback(name) or name.endswith(".localhost"):
        return LOCAL_ONLY.format(host=host)
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None  # a DNS name: whether others resolve and reach it is not ours to know
    if address.is_unspecified:
        return LOCAL_ONLY.format(host=host)
    if address.is_private or address.is_link_local:
        return PRIVATE_ONLY.format(host=host)
    return None


__all__ = ["LOCAL_ONLY", "PRIVATE_ONLY", "reach_warning"]
