"""The faust-streaming and aiokafka releases the worker's Faust patches fit, checked at start.

The worker replaces, copies or reproduces some of Faust's methods and reads and writes
private attributes of Faust and aiokafka objects (``docs/faust.md`` lists every one). Those
are not APIs: a new release may rename them or change what they do, and a patch written for
the old code would then go wrong quietly (lost or duplicated records, not an exception). So
before any patch is installed, ``ensure`` checks that

* the installed faust-streaming and aiokafka are the releases the patches were tested with
  (``TESTED_VERSIONS``, pinned in pyproject.toml), and
* the source of every Faust (and mode) function the worker replaces, copies or relies on is
  the one the patches were written against: ``FINGERPRINTS`` holds the SHA-256 of each one's
  source text (``inspect.getsource``, dedented), read from the installed files.

Either mismatch stops the worker with a one-line reason (``FaustCouplingError``, reported by
the CLI like every ``CrosscheckError``), unless ``OVERRIDE_VARIABLE`` is set to 1: then each
mismatch is a warning and the worker runs at its operator's risk.

After an upgrade was re-checked (``docs/faust.md``: what to re-check), print the new table
with ``python -m streams.worker.faust_guard`` and paste it over ``FINGERPRINTS``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import metadata

from streams.errors import CrosscheckError

#: set to 1 to run with an untested faust-streaming or aiokafka (each mismatch is a warning)
OVERRIDE_VARIABLE = "CROSSCHECK_ALLOW_UNTESTED_FAUST"

#: the releases the patches were written and tested for (pinned in pyproject.toml)
TESTED_VERSIONS: dict[str, str] = {
    "faust-streaming": "0.15.3",
    "aiokafka": "0.14.0",
}

#: SHA-256 of the source of each function the worker replaces, copies or relies on, by
#: "module:Class.method" (see docs/faust.md for why each one is here)
FINGERPRINTS: dict[str, str] = {
    "faust.tables.recovery:Recovery.on_recovery_completed":
        "895e7c415a4d137997ea0e6c04f0c180d3c783cd6ef18a977a14338ca1073b59",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._highwaters":
        "829699ec62b7ec5be2a48b2de20bf6d8dab271b49ea97a58422a15b74468101e",
    "faust.transport.drivers.aiokafka:Producer.commit_transactions":
        "cf922e8ea25a31606e872df9e9d89b622ee311d7fe50d23c2a7e64ac9ab01317",
    "faust.transport.consumer:Consumer._drain_messages":
        "8f35dd7a11144daa6ec9a3739a497b03a9dd6b57cca18aa861bb4a549400fc68",
    "faust.transport.consumer:Consumer.getmany":
        "e486c434b7928ee8dc33eb66f8ad03adae289861dcec23f4cbd767ccc3c38148",
    "faust.transport.consumer:Consumer.ack":
        "5548cf0f75843f73490a54177df6b38b23d6e61a65653e3de6bc929d5165bad4",
    "faust.transport.consumer:Consumer._new_offset":
        "2b29afe4dd9a65a3b1a0acbaf09b9bc3a7f98a168a3dd2924db879fb4f9301b3",
    "faust.transport.consumer:TransactionManager.commit":
        "fd7680d22034322769253aac2994844706eeb847ada2a94497d43d846d08ba34",
    "faust.stores.rocksdb:RocksDBOptions.as_options":
        "844b0de36bc6019822f73ae5871efc0aeeb7ccef8d2461075eae5cae9bea6b04",
    "faust.stores.rocksdb:Store._open_for_partition":
        "21bf6863c5a9af56cadde25ce0359901b3a05b0ff99431462aa930ddafb917dd",
    "faust.stores.rocksdb:Store.apply_changelog_batch":
        "67ac93a2bea2a48895059dd4bc377a1e60d0436055bf1011d75319912e1bdab8",
    "faust.stores.rocksdb:Store.on_rebalance":
        "a04fdf2e065d06858a9b013211123bc4ba261a324a4f91f08396c35bc5760ff2",
    "faust.stores.rocksdb:Store.persisted_offset":
        "6b4b2940005c3736356c1b99e73a53230b09a6dc01a8a083baee5a86ec6338c8",
    "faust.tables.manager:TableManager.on_rebalance":
        "fc9b70e03994df5c551f32c92aceb2caaeecadfd25e6ca6f49b85b699b2e6dc4",
    "faust.tables.recovery:Recovery._build_offsets":
        "0f5a7d62fb7d4a1f8f6b206894e23b2897778dd6e1b00edae583bbf4f864e2e1",
    "faust.tables.recovery:Recovery._add":
        "0bc4d8362676819982c87ac83a5c49128cbe72d167ec020378233c90c4ff0bac",
    "mode.worker:Worker._schedule_shutdown":
        "00f5a7d8fd26e62f89abdf6e12be58e608d81b895a8a72dcf969a93507f1b6c6",
}

#: where to read why the worker depends on these names
DOC = "docs/faust.md"


class FaustCouplingError(CrosscheckError):
    """The installed Faust or aiokafka is not the one the worker's patches were written for."""


def installed_version(package: str) -> str | None:
    """The installed version of a distribution, None if it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def version_problems(installed: Callable[[str], str | None] = installed_version,
                     tested: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per package whose installed version is not the tested one (by default
    ``TESTED_VERSIONS``)."""
    problems = []
    for package, version in (TESTED_VERSIONS if tested is None else tested).items():
        found = installed(package)
        if found != version:
            problems.append(f"{package} {found or '(not installed)'} is installed, but the "
                            f"worker's Faust patches were tested with {package} {version} only")
    return problems


@cache
def _lines(module_name: str) -> list[str]:
    """The lines of an installed module's source file (read once)."""
    return inspect.getsource(importlib.import_module(module_name)).splitlines(keepends=True)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _code(line: str) -> bool:
    """Whether a line holds code (not blank, not only a comment)."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _find(lines: list[str], name: str, start: int, depth: int) -> int:
    """The line that defines ``name`` (def, async def, class) at indentation ``depth`` in the
    block that begins at ``start`` and ends at the first line indented less."""
    header = re.compile(rf"[ \t]{{{depth}}}(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b")
    for at in range(start, len(lines)):
        line = lines[at]
        if not _code(line):
            continue
        if _indent(line) < depth:
            break
        if header.match(line):
            return at
    raise LookupError(f"{name} is not defined there")


def source_of(target: str) -> str:
    """The source text of a function, "module:Class.method" or "module:function", as the
    installed file holds it (dedented, decorators included): what ``inspect.getsource``
    gives for it, found in the module's file rather than through the live object, so that a
    method this process has replaced since is still read as shipped. LookupError if the
    file defines no such function, OSError if the file cannot be read."""
    module_name, _, qualname = target.partition(":")
    lines = _lines(module_name)
    at, depth = -1, 0
    for part in qualname.split("."):
        try:
            at = _find(lines, part, at + 1, depth)
        except LookupError:
            raise LookupError(f"{qualname} is not defined in {module_name}") from None
        depth = next((_indent(line) for line in lines[at + 1:] if _code(line)), depth)
    first = at
    while first > 0 and lines[first - 1].lstrip().startswith("@") \
            and _indent(lines[first - 1]) == _indent(lines[at]):
        first -= 1  # its decorators
    return textwrap.dedent("".join(lines[first:at]) + "".join(inspect.getblock(lines[at:])))


def fingerprint(target: str) -> str:
    """SHA-256 (hex) of ``source_of(target)``."""
    return hashlib.sha256(source_of(target).encode()).hexdigest()


def fingerprint_problems(expected: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per function whose installed source is not the one recorded (by default
    in ``FINGERPRINTS``)."""
    problems = []
    for target, digest in (FINGERPRINTS if expected is None else expected).items():
        name = target.partition(":")[2]
        try:
            found = fingerprint(target)
        except (OSError, LookupError, ImportError, SyntaxError) as exc:
            problems.append(f"the source of {name} cannot be read ({exc}), so the worker "
                            "cannot tell whether its Faust patches still fit")
            continue
        if found != digest:
            problems.append(f"{name} is not the code the worker's Faust patches were written "
                            f"against (source fingerprint {found[:12]}, expected {digest[:12]})")
    return problems


def check(environ: Mapping[str, str] | None = None,
          installed: Callable[[str], str | None] = installed_version,
          tested: Mapping[str, str] | None = None,
          expected: Mapping[str, str] | None = None) -> list[str]:
    """Raise FaustCouplingError for the first mismatch (versions first, then fingerprints);
    with the override variable set to 1, return every mismatch (to warn of) instead."""
    env = os.environ if environ is None else environ
    problems = version_problems(installed, tested)
    problems += fingerprint_problems(expected)
    if not problems:
        return []
    if env.get(OVERRIDE_VARIABLE, "") == "1":
        return problems
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise FaustCouplingError(f"{problems[0]}{more}; see {DOC}, or set {OVERRIDE_VARIABLE}=1 "
                             "to run anyway at your own risk")


_checked = False


def ensure() -> None:
    """``check`` once per process (before the first patch is installed); under the override,
    each mismatch is printed as a warning."""
    global _checked
    if _checked:
        return
    for problem in check():
        print(f"crosscheck: warning: {problem}; running anyway ({OVERRIDE_VARIABLE}=1)",
              file=sys.stderr, flush=True)
    _checked = True


def table(targets: Iterable[str] | None = None) -> str:
    """``FINGERPRINTS`` (or a table of ``targets``) as Python source, computed from the
    installed packages."""
    lines = ["FINGERPRINTS: dict[str, str] = {"]
    for target in FINGERPRINTS if targets is None else targets:
        lines += [f'    "{target}":', f'        "{fingerprint(target)}",']
    return "\n".join([*lines, "}"])


if __name__ == "__main__":
    print(table())
