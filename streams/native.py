"""The native engine (``streams._native``, Rust): whether this process runs it, and why not.

The package's build backend, maturin, compiles the crate in ``native/`` (PyO3, the stable ABI
of Python 3.11+) into the extension module ``streams._native``: into the wheel, and for an
editable install into the source tree (``streams/_native.abi3.so``), which ``make`` rebuilds
after an edit of the Rust sources. It implements the engine of ``streams/engine/partition.py``
and the rules of ``streams/rules`` function for function, over orders held as ``NativeOrder``
objects encoded byte for byte as ``streams.engine.state`` encodes them (state format 2), so a
store written by one engine is read by the other.

The Python engine is the reference the tests compare the native one with, and the fallback,
with the same outputs, slower: with ``CROSSCHECK_PURE_PYTHON=1`` or
``CROSSCHECK_PYTHON_ENGINE=1``, when the library cannot be imported, and in a source tree
whose library is older than the Rust sources beside it (stale: it would not run the code in
``native/src``). The worker and replay say so when they start (``notice``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType

#: set to 1: the Python engine runs, whatever is built (tests, A/B runs)
PURE_ENV = "CROSSCHECK_PURE_PYTHON"
#: set to 1: the same, under the name that says what it switches
PYTHON_ENGINE_ENV = "CROSSCHECK_PYTHON_ENGINE"
MODULE = "streams._native"
#: the crate, in a source tree (absent from an installed wheel)
CRATE = Path(__file__).resolve().parent.parent / "native"

#: what each status means, as the worker's start-up line and ``make test`` say it
STATUSES = {
    "native": "the native engine runs",
    "pure": f"{PURE_ENV} is set",
    "python": f"{PYTHON_ENGINE_ENV} is set",
    "none": "the native engine cannot be imported",
    "stale": "the native engine is older than its sources in native/ (`make native` "
             "rebuilds it)",
}


def sources() -> list[Path]:
    """The files of the crate the library is built from ([] outside a source tree)."""
    if not (CRATE / "Cargo.toml").exists():
        return []
    return sorted([CRATE / "Cargo.toml", CRATE / "Cargo.lock", *(CRATE / "src").glob("*.rs")])


def stale(library: Path) -> bool:
    """Whether ``library`` was built in this source tree before one of its sources last
    changed (False for an installed wheel, which has no sources beside it)."""
    if library.resolve().parent.parent != CRATE.parent:
        return False
    try:
        built = library.stat().st_mtime
        return any(p.stat().st_mtime > built for p in sources() if p.exists())
    except OSError:
        return False


#: the module this process runs (None: the Python engine), decided once by ``load``
_loaded: ModuleType | None = None
_status: str | None = None
#: why the library could not be imported (status ``none``)
_error = ""


def load() -> ModuleType | None:
    """The native module if this process runs it, deciding once: ``pure``
    (CROSSCHECK_PURE_PYTHON), ``python`` (CROSSCHECK_PYTHON_ENGINE), ``none`` (cannot be
    imported), ``stale`` (older than its sources) or ``native``."""
    global _loaded, _status, _error
    if _status is not None:
        return _loaded
    if os.environ.get(PURE_ENV):
        _status = "pure"
        return None
    if os.environ.get(PYTHON_ENGINE_ENV):
        _status = "python"
        return None
    try:
        spec = importlib.util.find_spec(MODULE)
        if spec is None or spec.origin is None:
            raise ImportError(f"no module named {MODULE!r}")
        if stale(Path(spec.origin)):
            _status = "stale"
            return None
        _loaded = importlib.import_module(MODULE)
    except ImportError as exc:
        _status, _error = "none", str(exc)
        return None
    _status = "native"
    return _loaded


def status() -> str:
    """What this process runs (see ``load``)."""
    load()
    assert _status is not None
    return _status


def reason() -> str:
    """Why this process runs the engine it runs, in words."""
    why = STATUSES[status()]
    return f"{why} ({_error})" if _error else why


def notice() -> str | None:
    """The line a long run (the worker, a replay) prints when it starts on the Python engine
    instead of the native one; None when the native engine runs."""
    if status() == "native":
        return None
    return f"crosscheck: running the Python engine, same outputs, slower: {reason()}"
