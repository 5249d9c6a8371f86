"""The wheel the project builds is all a user needs: built from this source tree with
``python -m build``, installed with pip into a fresh venv (every dependency as a wheel),
it answers ``clave --version`` and passes ``clave demo`` from its own site-packages,
with the glass (src/clave/ui) and the relay's page (src/clave/relay/static) inside.

Nothing here measures time: the subprocess timeouts only stop a hung step."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import clave

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="venv layout <venv>/bin"),
]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "clave"
VERSION = clave.__version__


@dataclass
class Installed:
    wheel: Path
    venv: Path
    env: dict[str, str]
    cwd: Path


def run(
    argv: list[str], timeout: float, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run a step to completion (the timeout only stops a hung one); it must succeed."""
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env=env, cwd=cwd, check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done


def clean_env(tmp: Path) -> dict[str, str]:
    """The machine's environment (pip's index settings included) without anything that
    would put the source tree or the test venv on sys.path."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",
        PIP_NO_INPUT="1",
        CLAVE_CONFIG_DIR=str(tmp / "config"),
        PYTHONUNBUFFERED="1",
    )
    return env


def asset_names() -> list[str]:
    """Every non-Python file of the package in the source tree, as wheel member names."""
    return sorted(
        "clave/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file()
        and p.suffix not in (".py", ".pyc")
        and "__pycache__" not in p.parts
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    if importlib.util.find_spec("build") is None:
        pytest.fail("the `build` package is missing: scripts/test.sh installs it ('.[test]')")
    tmp = tmp_path_factory.mktemp("wheel")
    env = clean_env(tmp)
    dist = tmp / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        timeout=600, env=env, cwd=ROOT)
    wheels = list(dist.glob("clave-*.whl"))
    assert [w.name for w in wheels] == [f"clave-{VERSION}-py3-none-any.whl"]

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=300, env=env, cwd=tmp)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--only-binary=:all:",
         str(wheels[0])], timeout=900, env=env, cwd=tmp)
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    yield Installed(wheels[0], venv, env, cwd)


def test_wheel_holds_every_asset_and_nothing_else(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = whl.namelist()
        metadata = whl.read(f"clave-{VERSION}.dist-info/METADATA").decode()
    assets = asset_names()
    for needed in ("clave/ui/index.html", "clave/ui/app.js", "clave/ui/app.css",
                   "clave/ui/media/worker.js", "clave/relay/static/landing.html",
                   "clave/relay/static/landing.css", "clave/py.typed"):
        assert needed in assets
    assert sorted(set(assets) - set(names)) == []
    assert any(n.startswith("clave/ui/") and n.endswith(".js") for n in names)
    dist_info = f"clave-{VERSION}.dist-info/"
    strays = [n for n in names if not (n.startswith(("clave/", dist_info)))]
    assert strays == []
    unwanted = [
        n for n in names
        if "__pycache__" in n or n.endswith(".pyc") or "node_modules" in n
        or ".venv" in n or n.startswith("clave/tests") or "/tests/" in n
    ]
    assert unwanted == []
    assert f"\nVersion: {VERSION}\n" in metadata
    for dependency in ("cryptography", "pyhpke", "msgspec", "aiohttp", "av", "numpy"):
        assert f"\nRequires-Dist: {dependency}" in metadata


def test_version(installed: Installed) -> None:
    done = run([str(installed.venv / "bin" / "clave"), "--version"],
               timeout=120, env=installed.env, cwd=installed.cwd)
    assert done.stdout.strip() == f"clave {VERSION}"


def test_clave_is_imported_from_the_venv(installed: Installed) -> None:
    probe = (
        "import sys, sysconfig, clave\n"
        "from importlib import resources\n"
        "print(clave.__file__)\n"
        "print(sysconfig.get_paths()['purelib'])\n"
        "print(resources.files('clave').joinpath('ui', 'index.html').is_file())\n"
        "print(resources.files('clave.relay').joinpath('static', 'landing.html').is_file())\n"
        "print(sys.path)\n"
    )
    done = run([str(installed.venv / "bin" / "python"), "-c", probe],
               timeout=120, env=installed.env, cwd=installed.cwd)
    where, purelib, ui, landing, path = done.stdout.splitlines()
    site = Path(purelib).resolve()
    assert site.is_relative_to(installed.venv.resolve())
    assert Path(where).resolve() == site / "clave" / "__init__.py"
    assert not Path(where).resolve().is_relative_to(ROOT)
    assert (ui, landing) == ("True", "True")
    assert str(ROOT / "src") not in path


def test_demo_passes_from_the_installed_wheel(installed: Installed) -> None:
    done = run([str(installed.venv / "bin" / "clave"), "demo", "--seconds", "3"],
               timeout=600, env=installed.env, cwd=installed.cwd)
    lines = done.stdout.splitlines()
    assert lines[-1] == "demo passed"
    assert lines.count("  [ok] the relay saw no plaintext, names or keys") == 1
    assert [line for line in lines if "[FAIL]" in line or "FAILED" in line] == []
