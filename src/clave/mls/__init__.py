"""MLS, RFC 9420: a strict, sans-I/O implementation (one module per RFC concept)."""
