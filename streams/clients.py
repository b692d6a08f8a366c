"""Kafka client settings (bootstrap, security) for confluent-kafka and Faust, and reachability."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.config import Settings
from streams.errors import BrokerUnreachable

#: librdkafka logs connection failures itself; they are reported once, by us, instead.
_quiet = logging.getLogger("crosscheck.librdkafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def confluent_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Configuration for a confluent-kafka Producer/Consumer/AdminClient."""
    conf: dict[str, Any] = {"bootstrap.servers": settings.bootstrap, "logger": _quiet}
    sec = settings.security
    if sec.protocol:
        conf["security.protocol"] = sec.protocol
    if sec.sasl_mechanism:
        conf["sasl.mechanism"] = sec.sasl_mechanism
    if sec.sasl_username:
        conf["sasl.username"] = sec.sasl_username
    if sec.sasl_password:
        conf["sasl.password"] = sec.sasl_password
    if sec.ssl_ca_location:
        conf["ssl.ca.location"] = sec.ssl_ca_location
    conf.update(extra)
    return conf


def faust_broker_settings(settings: Settings) -> dict[str, Any]:
    """Faust app settings for the same cluster and credentials (aiokafka underneath)."""
    import faust

    result: dict[str, Any] = {
        "broker": ",".join(f"kafka://{h}" for h in settings.bootstrap.split(",")),
    }
    sec = settings.security
    protocol = (sec.protocol or "PLAINTEXT").upper()
    ssl_context = None
    if protocol in ("SSL", "SASL_SSL"):
        import ssl

        ssl_context = ssl.create_default_context(cafile=sec.ssl_ca_location)
    if protocol.startswith("SASL"):
        result["broker_credentials"] = faust.SASLCredentials(
            username=sec.sasl_username,
            password=sec.sasl_password,
            mechanism=sec.sasl_mechanism or "PLAIN",
            ssl_context=ssl_context,
        )
    elif ssl_context is not None:
        result["broker_credentials"] = faust.SSLCredentials(ssl_context)
    return result


def admin(settings: Settings) -> AdminClient:
    """An AdminClient, after checking that the cluster answers."""
    client = AdminClient(confluent_config(settings))
    check_reachable(settings, client)
    return client


def check_reachable(settings: Settings, client: AdminClient | None = None,
                    timeout: float = 8.0) -> None:
    """Raise BrokerUnreachable (naming the address) unless the cluster answers a metadata call."""
    client = client or AdminClient(confluent_config(settings))
    try:
        client.list_topics(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else exc
        detail = getattr(err, "str", lambda: str(err))()
        raise BrokerUnreachable(settings.bootstrap, detail) from None
