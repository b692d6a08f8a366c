"""The optional compiled core: the rules and engine modules built with mypyc, and its checks.

``make compile`` (which ``make install`` runs, best effort) builds the modules of ``MODULES``
with mypyc into C extensions next to their sources (``<module>.cpython-311-*.so``, and one
shared ``streams/core__mypyc.*.so``); Python's import system prefers them to the
``.py`` files. They are the same code: mypyc compiles the typed Python as it is, so the
outputs are identical, and the test suite runs against them (and the rules and engine tests
once more in pure Python). Nothing needs them: without a C compiler, or after ``make
clean-compiled``, or with ``CROSSCHECK_PURE_PYTHON=1``, the pure Python modules run.

The build writes ``streams/compiled.json``: the SHA-256 of each compiled source. When a
source no longer matches (it was edited after the build), the extensions are stale, and the
process runs the pure Python modules instead, with a warning, rather than code that is not
the source's (``select``, called once by ``streams/__init__.py``).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

#: the hot modules (profiled: the engine and state-write stages, about 60 % of a record's
#: cost). All in the streams package, whose ``__init__`` switches them to pure Python before
#: any is imported; modules with msgspec Structs stay interpreted (mypyc cannot compile them)
MODULES = (
    "streams.rules.entities",
    "streams.rules.triggers",
    "streams.rules.catalog",
    "streams.engine.watermark",
    "streams.engine.overlay",
    "streams.engine.partition",
    "streams.records",
    "streams.fastdecode",
    "streams.inputs",
    "streams.metrics.tracker",
    "streams.worker.due_index",
    "streams.worker.store",
    "streams.worker.arrival",
    "streams.worker.runtime",
)
PURE_ENV = "CROSSCHECK_PURE_PYTHON"
#: the modules' shared library is ``streams/core__mypyc.*.so``: inside the package, so the
#: editable install's finder (which maps packages, not the repository root) finds it
GROUP = "core"
_SETUP = f"""
import sys
from mypyc.build import mypycify
from setuptools import setup
setup(name="crosscheck-core", ext_modules=mypycify(sys.argv[1:], group_name="streams.{GROUP}"),
      script_args=["build_ext", "--inplace"])
"""
ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "streams" / "compiled.json"


def source_of(module: str) -> Path:
    """The .py file of a module of ``MODULES``."""
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extensions() -> list[Path]:
    """The built extension files in the streams package: of ``MODULES``, their shared
    library, and any left by an earlier build of other modules (which Python would still
    import before the module's .py file)."""
    return sorted((ROOT / "streams").rglob("*.cpython-*.so"))


def stale_sources() -> list[str]:
    """Modules whose source differs from what the extensions were built from ([] when the
    build is current or there is none)."""
    if not MANIFEST.exists():
        return []
    try:
        built = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return list(MODULES)
    return [m for m in MODULES
            if not source_of(m).exists() or built.get(m) != _digest(source_of(m))]


#: what this process runs, as ``select()`` decided when the streams package was imported
_selected: str | None = None


def select() -> str:
    """Decide which core this process runs, once, before any of ``MODULES`` is imported
    (``streams/__init__.py`` calls it): ``pure`` (no build, or CROSSCHECK_PURE_PYTHON),
    ``stale`` (a build older than its sources: warn, and run the pure modules) or
    ``compiled``. Returns the decision, which ``status()`` reports from then on."""
    global _selected
    if os.environ.get(PURE_ENV):
        _selected = "pure"
        use_pure_python()
    elif not MANIFEST.exists() or not extensions():
        _selected = "pure"
    elif stale := stale_sources():
        print(f"crosscheck: the compiled core is older than {', '.join(stale)}: running the "
              "pure Python modules (run `make compile` to rebuild it)", file=sys.stderr)
        _selected = "stale"
        use_pure_python()
    else:
        _selected = "compiled"
    return _selected


def status() -> str:
    """What this process runs: ``compiled``, ``pure`` or ``stale`` (see ``select``)."""
    return _selected if _selected is not None else select()


def use_pure_python() -> None:
    """Make the streams package import its ``.py`` modules, never the extensions."""
    package = str(ROOT / "streams")

    def inside(path: str) -> bool:
        return path == package or path.startswith(package + os.sep)

    details = [(importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
               (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES)]
    default = importlib.machinery.FileFinder.path_hook(*details)

    def hook(path: str) -> importlib.abc.PathEntryFinder:
        if not inside(os.path.abspath(path)):
            raise ImportError("not a directory of the streams package")
        return default(path)

    sys.path_hooks.insert(0, hook)
    for cached in [p for p in sys.path_importer_cache if inside(p)]:
        del sys.path_importer_cache[cached]


def build() -> None:
    """Compile ``MODULES`` with mypyc in place and write the manifest (``make compile``)."""
    clean()
    sources = [str(source_of(m).relative_to(ROOT)) for m in MODULES]
    digests = {m: _digest(source_of(m)) for m in MODULES}
    with tempfile.TemporaryDirectory(prefix="crosscheck-mypyc-") as work:
        # mypyc's setuptools run reads ./pyproject.toml: build from a tree without one, so the
        # project's own packaging settings do not apply to this in-place build
        tree = Path(work)
        for package in ("streams", "schemas", "topology"):
            shutil.copytree(ROOT / package, tree / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        done = subprocess.run([sys.executable, "-c", _SETUP, *sources], cwd=tree,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode:  # mypyc reports type errors on stdout, amid setuptools' output
            print(done.stdout, file=sys.stderr)
            raise subprocess.CalledProcessError(done.returncode, done.args)
        for module in MODULES:
            rel = source_of(module).relative_to(ROOT)
            for built in (tree / rel).parent.glob(rel.stem + ".cpython-*.so"):
                _install(built, ROOT / rel.parent / built.name)
        for shared in (tree / "streams").glob(f"{GROUP}__mypyc.cpython-*.so"):
            _install(shared, ROOT / "streams" / shared.name)
    MANIFEST.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def _install(built: Path, dest: Path) -> None:
    """Copy under a temporary name, then rename: a running process that has the old file
    mapped keeps it (a copy over it in place could crash that process)."""
    part = dest.with_name(dest.name + ".part")
    shutil.copy2(built, part)
    os.replace(part, dest)


def clean() -> None:
    """Remove the extensions and the manifest (``make clean-compiled``)."""
    for path in extensions():
        path.unlink()  # a running process keeps its mapped copy
    MANIFEST.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """``build``, ``clean`` or ``status`` (what the Makefile's compile targets call)."""
    return run_command(argv, build, clean, status, what="the compiled core",
                       fallback="the pure Python modules run",
                       failed="mypyc's build exited {code}, its errors are above",
                       built=f"compiled core built ({len(MODULES)} modules)")


def run_command(argv: list[str], build: Callable[[], None], clean: Callable[[], None],
                status: Callable[[], str], *, what: str, fallback: str, failed: str,
                built: str) -> int:
    """The ``build|clean|status`` command of an optional build (this one, streams.native):
    a build that fails is cleaned away and says so, ``what`` not being built and
    ``fallback`` running instead (``failed``: the reason for a non-zero exit ``{code}``)."""
    command = argv[0] if argv else "status"
    if command == "build":
        try:
            build()
        except (OSError, subprocess.CalledProcessError) as exc:
            clean()
            why = (failed.format(code=exc.returncode)
                   if isinstance(exc, subprocess.CalledProcessError) else str(exc))
            print(f"crosscheck: {what} was not built ({why}); {fallback} (same outputs, "
                  "slower)", file=sys.stderr)
            return 1
        print(f"crosscheck: {built}", file=sys.stderr)
        return 0
    if command == "clean":
        clean()
        return 0
    if command == "status":
        print(status())
        return 0
    print("usage: build|clean|status", file=sys.stderr)
    return 2
