"""Relay nodes as one relay: commit order, membership and fan-out over NATS."""
