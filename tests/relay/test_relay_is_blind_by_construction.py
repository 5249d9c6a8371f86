"""clave.relay cannot decrypt anything: it does not even import the crypto packages."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import clave.relay

FORBIDDEN = (
    "clave.mls",
    "clave.sframe",
    "clave.meeting",
    "clave.engine",
    "clave.media",
    "cryptography",
    "pyhpke",
    "nacl",
    "Crypto",
)
RELAY_DIR = Path(clave.relay.__file__).resolve().parent


def is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_importing_the_relay_loads_no_crypto_module() -> None:
    code = (
        "import json, sys\n"
        "import clave.relay, clave.relay.server, clave.relay.connection, clave.relay.room\n"
        "import clave.relay.__main__, clave.relay.cluster.node\n"
        "app = clave.relay.server.create_app()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "clave.relay.server" in loaded and "clave.wire" in loaded
    assert [m for m in loaded if is_forbidden(m)] == []


def test_relay_sources_import_only_the_wire_format_from_clave() -> None:
    sources = sorted(RELAY_DIR.rglob("*.py"))
    assert len(sources) >= 8
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: must stay inside clave.relay
                    depth = len(path.relative_to(RELAY_DIR).parts) - 1
                    assert node.level <= 1 + depth, f"{path.name}: import from outside the relay"
                    continue
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                raise AssertionError(f"{path.name}: dynamic import")
            else:
                continue
            for name in names:
                assert not is_forbidden(name), f"{path.name} imports {name}"
                if name == "clave" or name.startswith("clave."):
                    assert name == "clave.wire" or name.startswith("clave.relay"), (
                        f"{path.name} imports {name}"
                    )
        assert "importlib.import_module" not in path.read_text(), path.name
