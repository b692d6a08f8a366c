"""What a command takes from its invocation: the settings, the topology, the local broker."""

from __future__ import annotations

import click

from streams.broker import LocalBroker
from streams.config import Settings, load_settings
from topology.topics import Topology


def settings_of(ctx: click.Context) -> Settings:
    """The settings, loaded once per invocation."""
    root = ctx.find_root()
    root.ensure_object(dict)
    if "settings" not in root.obj:  # (a command's --rules FILE replaces CROSSCHECK_RULES_FILE)
        root.obj["settings"] = load_settings(rules_file=root.obj.get("rules_file"))
    settings: Settings = root.obj["settings"]
    return settings


def topology_of(ctx: click.Context) -> Topology:
    """The topology of the configured settings."""
    s = settings_of(ctx)
    return Topology(s.partitions, s.topic_prefix, s.topic_overrides)


def local_broker(settings: Settings) -> LocalBroker:
    """The local broker of the configured CROSSCHECK_HOME and port."""
    return LocalBroker(settings.home, settings.broker_port, settings.broker_heap)
