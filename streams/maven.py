"""Jars of a pinned pom from Maven Central, fetched once into a directory (local JVM services)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from streams.errors import CrosscheckError

_POM_NS = "{http://maven.apache.org/POM/4.0.0}"
MVN_TIMEOUT = 900.0


def pom_property(pom: Path, name: str, error: type[CrosscheckError]) -> str:
    """The value of ``<properties><name>`` in ``pom``; ``error`` if the pom or value is missing."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise error(f"cannot read the pom {pom}: {exc}") from exc
    for path in (f"{_POM_NS}properties/{_POM_NS}{name}", f"properties/{name}"):
        node = root.find(path)
        if node is not None and node.text and node.text.strip():
            return node.text.strip()
    raise error(f"no <{name}> property in {pom}")


def have_jars(jars_dir: Path, marker: str) -> bool:
    """True when ``jars_dir`` holds a jar matching the glob ``marker``."""
    return jars_dir.is_dir() and any(jars_dir.glob(marker))


def ensure_jars(pom: Path, jars_dir: Path, marker: str, what: str,
                error: type[CrosscheckError]) -> Path:
    """The runtime jars of ``pom`` in ``jars_dir``, fetched with Maven the first time.

    ``marker`` is a glob of a jar that must be among them; ``what`` names them in messages.
    Processes that ask at the same time (parallel test workers) wait for one fetch, which
    goes to a temporary directory renamed into place, so a half-fetched directory is never
    seen.
    """
    if have_jars(jars_dir, marker):
        return jars_dir
    jars_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(jars_dir.parent / f".{jars_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if have_jars(jars_dir, marker):  # fetched while this process waited
            return jars_dir
        return _fetch(pom, jars_dir, marker, what, error)


def _fetch(pom: Path, jars_dir: Path, marker: str, what: str,
           error: type[CrosscheckError]) -> Path:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise error(f"Maven (mvn) is not on PATH; it is needed once to fetch the {what} jars "
                    f"from Maven Central into {jars_dir} (install maven)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{jars_dir.name}-", dir=jars_dir.parent))
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
    try:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise error(f"mvn did not fetch the {what} jars within {MVN_TIMEOUT:.0f}s") from exc
        if done.returncode != 0 or not any(tmp.glob(marker)):
            out = (done.stdout + done.stderr).strip().splitlines()[-20:]
            raise error(f"mvn could not fetch the {what} jars of {pom} "
                        f"(exit {done.returncode}):\n" + "\n".join(out))
        try:
            tmp.rename(jars_dir)
        except OSError:
            if not jars_dir.is_dir():  # not a concurrent winner: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return jars_dir
