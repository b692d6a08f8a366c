"""docker/compose.yaml and docker/Dockerfile only use commands and settings crosscheck has."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.broker_config import DEFAULT_POM, kafka_version
from streams.config import ENV_VARS

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
SUBCOMMANDS = {"worker", "topics", "produce", "export", "status"}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict) and services
    return services


def _is_crosscheck(service: dict[str, Any]) -> bool:
    """Built from docker/Dockerfile (the crosscheck image), as opposed to Kafka's image."""
    return "build" in service or str(service.get("image", "")).startswith("crosscheck")


def _crosscheck_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if _is_crosscheck(svc)}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    joined = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _exec_form(instruction: str) -> list[str]:
    values = [json.loads(rest) for word, rest in _instructions() if word == instruction]
    assert len(values) == 1, f"expected exactly one {instruction} in {DOCKERFILE}"
    assert isinstance(values[0], list), f"{instruction} must use the exec (JSON) form"
    return [str(v) for v in values[0]]


def test_there_is_a_kafka_a_topic_creator_and_two_workers() -> None:
    services = _services()
    assert {"kafka", "topics", "worker-1", "worker-2"} <= set(services)
    assert set(_crosscheck_services()) == set(services) - {"kafka"}


@pytest.mark.parametrize("name", sorted(_crosscheck_services()))
def test_every_command_is_a_crosscheck_subcommand(name: str) -> None:
    command = _command(_crosscheck_services()[name])
    entrypoint = _crosscheck_services()[name].get("entrypoint")
    assert entrypoint is None, "the image's ENTRYPOINT (crosscheck) must not be overridden"
    assert command, f"service {name} has no command"
    assert command[0] in SUBCOMMANDS, f"{name}: {command[0]!r} is not a crosscheck subcommand"


def test_topic_creator_and_workers_run_the_right_commands() -> None:
    services = _services()
    assert _command(services["topics"])[:2] == ["topics", "create"]
    for worker in ("worker-1", "worker-2"):
        assert _command(services[worker]) == ["worker"]


@pytest.mark.parametrize("name", sorted(_crosscheck_services()))
def test_every_environment_variable_is_one_crosscheck_reads(name: str) -> None:
    env = _environment(_crosscheck_services()[name])
    unknown = sorted(set(env) - set(ENV_VARS))
    assert not unknown, f"{name} sets variables crosscheck does not read: {unknown}"
    assert env.get("KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092"
    assert env.get("CROSSCHECK_HOME") == "/data"


def test_no_crosscheck_variable_anywhere_is_unknown() -> None:
    for name, service in _services().items():
        for var in _environment(service):
            if var.startswith("CROSSCHECK_") or var == "KAFKA_BOOTSTRAP_SERVERS":
                assert var in ENV_VARS, f"{name}: {var} is not in streams.config.ENV_VARS"


def test_workers_use_distinct_web_ports_and_their_own_state() -> None:
    services = _services()
    workers = [svc for name, svc in services.items() if _command(svc)[:1] == ["worker"]]
    assert len(workers) >= 2
    ports = [_environment(svc).get("CROSSCHECK_WORKER_PORT") for svc in workers]
    assert None not in ports and len(set(ports)) == len(ports)
    volumes = [tuple(svc.get("volumes") or ()) for svc in workers]
    assert all(volumes) and len(set(volumes)) == len(volumes)


def test_workers_wait_for_kafka_and_the_topics() -> None:
    services = _services()
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in services["kafka"]
    for worker in ("worker-1", "worker-2"):
        deps = services[worker]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["topics"]["condition"] == "service_completed_successfully"


def test_kafka_is_the_pinned_version_in_single_node_kraft_mode() -> None:
    kafka = _services()["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version(DEFAULT_POM)}"
    env = _environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == "1"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for factor in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[factor] == "1"
    assert len(env["CLUSTER_ID"]) == 22  # base64 of a 16-byte UUID, as KRaft requires


def _stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, one list per stage (each begins with its FROM)."""
    stages: list[list[tuple[str, str]]] = []
    for word, rest in _instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    return stages


def test_dockerfile_builds_the_wheel_and_runs_crosscheck_worker_on_python_311() -> None:
    build, runtime = _stages()
    assert build[0] == ("FROM", "python:3.11-slim AS build")
    assert runtime[0] == ("FROM", "python:3.11-slim")
    assert any(word == "RUN" and "maturin build --release --out /wheels" in rest
               for word, rest in build)
    assert ("COPY", "--from=build /wheels /wheels") in runtime
    installs = [rest for word, rest in runtime if word == "RUN" and "pip install" in rest]
    assert len(installs) == 1 and "pip install /wheels/crosscheck-*.whl" in installs[0]
    assert 'n.status() == "native"' in installs[0]  # the image refuses to run Python's engine
    assert not any(word == "COPY" and "--from" not in rest for word, rest in runtime)
    assert _exec_form("ENTRYPOINT") == ["crosscheck"]
    assert _exec_form("CMD") == ["worker"]


def test_the_build_stage_copies_what_the_wheel_is_built_from() -> None:
    copied = {source for word, rest in _stages()[0] if word == "COPY"
              for source in shlex.split(rest)[:-1]}
    assert copied == {"pyproject.toml", "README.md", "native", "streams", "schemas", "topology"}
    assert {"native/target", "**/*.so", ".venv"} <= set(
        (REPO / ".dockerignore").read_text(encoding="utf-8").split())


def test_dockerfile_copies_only_paths_that_exist() -> None:
    for word, rest in _instructions():
        if word != "COPY" or "--from=" in rest:
            continue
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        for source in args[:-1]:
            assert (REPO / source).exists(), f"Dockerfile copies missing path {source}"


def test_compose_builds_the_image_from_the_repository_root() -> None:
    for name, service in _crosscheck_services().items():
        build = service["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO, name
        assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE, name
