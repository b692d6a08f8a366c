"""The optional native core: the engine and rules in Rust (``native/``), its build and checks.

``make native`` (which ``make install`` runs, best effort) builds the crate in ``native/`` with
cargo (PyO3, the stable ABI of Python 3.11+) and installs the library as
``streams/_native.abi3.so``. It implements the engine of ``streams/engine/partition.py`` and
the rules of ``streams/rules`` function for function, over orders held as ``NativeOrder``
objects encoded byte for byte as ``streams.engine.state`` encodes them (state format 2), so a
store written by one core is read by the other. The Python modules stay the reference and
the fallback: without cargo, after ``make clean-native``, or with
``CROSSCHECK_PURE_PYTHON=1``, they run (same outputs, slower); the test suite runs against
the native core when it is built, and its engine and rules tests once more in pure Python.

Like the mypyc build (``streams/compiled.py``), the build records the SHA-256 of its sources
(``streams/native.json``); a library older than its sources is not loaded (with a warning).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from streams.compiled import PURE_ENV, ROOT, _digest, _install, run_command

#: set to 1: the Python engine runs although the native core is built (for A/B runs and tests)
PYTHON_ENGINE_ENV = "CROSSCHECK_PYTHON_ENGINE"

CRATE = ROOT / "native"
LIBRARY = ROOT / "streams" / "_native.abi3.so"
MANIFEST = ROOT / "streams" / "native.json"
#: what cargo builds (the crate's lib name)
_BUILT = CRATE / "target" / "release" / "libcrosscheck_native.so"


def sources() -> list[Path]:
    """The files the library is built from."""
    return sorted([CRATE / "Cargo.toml", CRATE / "Cargo.lock", *(CRATE / "src").glob("*.rs")])


def _digests() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): _digest(p) for p in sources() if p.exists()}


def stale() -> bool:
    """Whether the library was built from other sources than the ones here (False when
    there is no build, or no sources: an installed package without the crate)."""
    if not MANIFEST.exists() or not CRATE.exists():
        return False
    try:
        return bool(json.loads(MANIFEST.read_text()) != _digests())
    except (OSError, ValueError):
        return True


#: the module this process runs (None: the Python engine), decided once by ``load``
_loaded: ModuleType | None = None
_status: str | None = None


def load() -> ModuleType | None:
    """The native module if this process runs it, deciding once: ``pure``
    (CROSSCHECK_PURE_PYTHON), ``python`` (CROSSCHECK_PYTHON_ENGINE), ``none`` (not built),
    ``stale`` (older than its sources: warn, run Python) or ``native``."""
    global _loaded, _status
    if _status is not None:
        return _loaded
    if os.environ.get(PURE_ENV):
        _status = "pure"
    elif os.environ.get(PYTHON_ENGINE_ENV):
        _status = "python"
    elif not LIBRARY.exists():
        _status = "none"
    elif stale():
        print("crosscheck: the native core is older than its sources in native/: running the "
              "Python engine (run `make native` to rebuild it)", file=sys.stderr)
        _status = "stale"
    else:
        _loaded, _status = _import(), "native"
    return _loaded


def _import() -> ModuleType:
    """Import the library from its file (not through the import system, whose path hook for
    the streams package may be limited to .py files: ``compiled.use_pure_python``)."""
    spec = importlib.util.spec_from_file_location("streams._native", LIBRARY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def status() -> str:
    """What this process runs (see ``load``)."""
    load()
    assert _status is not None
    return _status


def cargo() -> str | None:
    """The cargo to build with: on the PATH, or where rustup puts it."""
    found = shutil.which("cargo")
    home = Path.home() / ".cargo" / "bin" / "cargo"
    return found or (str(home) if home.exists() else None)


def build() -> None:
    """Build the crate with cargo and install the library (``make native``)."""
    clean()
    # an extension module: Python's symbols are left to the interpreter that loads it
    # (without this, the crate links libpython, as its `cargo test` binaries do)
    env = {**os.environ, "PYO3_PYTHON": sys.executable, "PYO3_BUILD_EXTENSION_MODULE": "1"}
    done = subprocess.run([cargo() or "cargo", "build", "--release", "--locked", "--quiet"],
                          cwd=CRATE, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if done.returncode:
        print(done.stdout, file=sys.stderr)
        raise subprocess.CalledProcessError(done.returncode, done.args)
    _install(_BUILT, LIBRARY)
    MANIFEST.write_text(json.dumps(_digests(), indent=1, sort_keys=True) + "\n")


def clean() -> None:
    """Remove the library and its manifest (``make clean-native``)."""
    LIBRARY.unlink(missing_ok=True)
    MANIFEST.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """``build``, ``clean`` or ``status`` (what the Makefile's native targets call)."""
    if argv[:1] == ["build"] and cargo() is None:
        print("crosscheck: no cargo on the PATH: the native core was not built; the Python "
              "engine runs (same outputs, slower)", file=sys.stderr)
        return 1
    return run_command(argv, build, clean, status, what="the native core",
                       fallback="the Python engine runs",
                       failed="cargo exited {code}, its output is above",
                       built="native core built (streams/_native.abi3.so)")
