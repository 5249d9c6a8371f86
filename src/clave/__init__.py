"""Clave: end-to-end encrypted video meetings (MLS RFC 9420 + SFrame RFC 9605)."""

__version__ = "0.1.0"
