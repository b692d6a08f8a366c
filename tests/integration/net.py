"""Free loopback ports for the brokers and workers the integration tests start."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def free_port_pair() -> int:
    """A port p such that p (broker) and p + 1 (controller) are both free on 127.0.0.1.

    Chosen below the kernel's ephemeral range, so that no client connection made during the
    test (ours or another process's) can take the port between this check and the broker's bind.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, max(20002, min(low, 32768)) - 1)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of adjacent ports")
