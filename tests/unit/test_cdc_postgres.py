"""The local PostgreSQL's files: its binaries, where its cluster lives, the pinned Connect jars."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from streams.cdc import postgres
from streams.cdc.config import CONNECT_POM, CdcPaths, connect_versions
from streams.cdc.postgres import LocalPostgres, find_bin_dir
from streams.errors import CdcError
from streams.maven import pom_property


def _fake_bin(path: Path) -> Path:
    path.mkdir(parents=True)
    for name in ("postgres", "initdb"):
        (path / name).write_text("#!/bin/sh\n")
    return path


def test_binaries_are_found_where_told_first(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = _fake_bin(tmp_path / "explicit")
    env = _fake_bin(tmp_path / "env")
    monkeypatch.setenv("CROSSCHECK_PG_BIN", str(env))
    assert find_bin_dir(explicit) == explicit
    assert find_bin_dir() == env
    assert find_bin_dir(tmp_path / "nothing-here") == env
    monkeypatch.setenv("CROSSCHECK_PG_BIN", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("PATH", str(env))
    found = find_bin_dir()
    assert found is not None and (found / "initdb").is_file()


def test_missing_binaries_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "find_bin_dir", lambda explicit=None: None)
    with pytest.raises(CdcError, match=r"no PostgreSQL binaries .* CROSSCHECK_PG_BIN"):
        LocalPostgres(tmp_path).bin_dir()


def _me() -> pwd.struct_passwd:
    return pwd.getpwuid(os.geteuid())


def test_the_cluster_lives_under_the_home_when_its_user_can_reach_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pg = LocalPostgres(tmp_path / "home")
    monkeypatch.setattr(LocalPostgres, "_reaches", lambda self, user, path: True)
    data = pg._make_data_dir(_me())
    assert data == pg.paths.pg_data and data.is_dir() and not data.is_symlink()
    assert data.stat().st_mode & 0o777 == 0o700


def test_the_cluster_moves_to_the_service_home_when_its_user_cannot_reach_the_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = tmp_path / "var-lib-postgresql"
    monkeypatch.setattr(postgres, "SERVICE_HOME", service)
    monkeypatch.setattr(LocalPostgres, "_reaches", lambda self, user, path: False)
    pg = LocalPostgres(tmp_path / "root-home")
    data = pg._make_data_dir(_me())
    assert data.parent == service and data.is_dir()
    assert pg.paths.pg_data.is_symlink() and pg.paths.pg_data.resolve() == data
    assert pg.data_dir() == data
    other = LocalPostgres(tmp_path / "another-home")._make_data_dir(_me())
    assert other != data  # one cluster per home
    assert pg._make_data_dir(_me()) == data  # and found again


def test_the_connect_jars_are_pinned_by_the_pom_in_the_package(tmp_path: Path) -> None:
    assert connect_versions() == ("3.9.1", "3.6.1.Final")
    assert CONNECT_POM.parent.name == "cdc" and CONNECT_POM.parent.parent.name == "streams"
    assert CdcPaths(tmp_path).jars_dir() == tmp_path / "connect-3.9.1-debezium-3.6.1.Final" / "lib"
    with pytest.raises(CdcError, match=r"no <missing\.version> property"):
        pom_property(CONNECT_POM, "missing.version", CdcError)
    with pytest.raises(CdcError, match="cannot read the pom"):
        pom_property(tmp_path / "absent.xml", "connect.version", CdcError)
