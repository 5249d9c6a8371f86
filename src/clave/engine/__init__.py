"""asyncio glue: relay connection <-> meeting core <-> media (PyAV) or UI.

Everything asynchronous lives here; :mod:`clave.meeting` stays sans-I/O.
"""
