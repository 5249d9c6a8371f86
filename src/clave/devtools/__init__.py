"""Tools for audits and tests that ship with Clave (not used by the relay or engine at run time)."""
