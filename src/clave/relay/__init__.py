"""The untrusted relay: rooms, delivery-service ordering, media fan-out, landing page.

It sees room ids, connection ids, hashes of tokens and epoch credentials,
sizes and timings, and nothing else: every payload is ciphertext it cannot
read. By construction it imports nothing from ``clave.mls``, ``clave.sframe``
or ``clave.meeting``.

Modules: :mod:`.config` (settings), :mod:`.limits` (token buckets),
:mod:`.queues` (per-receiver queue and drop policy, per-address backlog),
:mod:`.addresses` (per-client-address caps: connections, rooms, creation rate),
:mod:`.stats` (refusal counts), :mod:`.ordering` (commit ordering by epoch
credential), :mod:`.room` (admission, routing, fan-out),
:mod:`.connection` (one client: read loop, writer task),
:mod:`.state` (what one relay holds), :mod:`.landing` (``/m/<room>``),
:mod:`.logs` (no addresses in logs), :mod:`.server` (app factory, runners).
"""

from .config import RelayConfig
from .server import create_app, serve_forever, start_relay

__all__ = ["RelayConfig", "create_app", "serve_forever", "start_relay"]
