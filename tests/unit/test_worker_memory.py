"""The worker's glibc malloc settings: arena limit and the periodic trim."""

from __future__ import annotations

import pytest

from streams.worker import memory


@pytest.fixture(autouse=True)
def glibc() -> None:
    if memory._libc() is None:
        pytest.skip("not glibc")


def test_limit_and_trim_are_accepted_by_glibc() -> None:
    assert memory.limit_arenas(2) is True
    assert memory.limit_arenas(0) is False
    memory.trim()  # True or False: whether there was memory to give back


def test_install_starts_a_trimmer_unless_turned_off() -> None:
    trimmer = memory.install({memory.TRIM_EVERY_ENV: "3600"})
    assert trimmer is not None and trimmer.is_alive() and trimmer.every == 3600
    trimmer.stop()
    trimmer.join(10)
    assert not trimmer.is_alive() and trimmer.trims == 0
    assert memory.install({memory.TRIM_EVERY_ENV: "0"}) is None


def test_the_trimmer_trims_until_stopped() -> None:
    trimmer = memory.Trimmer(0.01)
    trimmer.start()
    while trimmer.trims < 2:  # no timing asserted: it only has to happen
        trimmer.join(0.05)
    trimmer.stop()
    trimmer.join(10)
    assert not trimmer.is_alive()
