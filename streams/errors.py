"""Exceptions of the crosscheck package: one base class, one subclass per failure kind."""

from __future__ import annotations


class CrosscheckError(Exception):
    """Base class: an error the CLI reports as one clear line, without a stack trace."""


class BrokerError(CrosscheckError):
    """The local broker could not be started, stopped or reached."""


class CdcError(CrosscheckError):
    """The local CDC stack (PostgreSQL, Kafka Connect) could not be started, stopped or reached."""


class ConfigError(CrosscheckError):
    """A setting (environment variable or option) has an invalid value."""


class BrokerUnreachable(CrosscheckError):
    """No Kafka broker answered at the configured bootstrap address."""

    def __init__(self, bootstrap: str, detail: str = "") -> None:
        self.bootstrap = bootstrap
        msg = f"no Kafka broker answered at {bootstrap}"
        if detail:
            msg += f" ({detail})"
        msg += (
            "; start the local one with `crosscheck broker start` "
            "or set KAFKA_BOOTSTRAP_SERVERS to your cluster"
        )
        super().__init__(msg)

