"""The Faust app of one worker process: its options, its configuration and its tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faust

from streams.clients import faust_broker_settings
from streams.config import Settings
from streams.names import META_TABLE, METRICS_TABLE, ORDERS_TABLE
from streams.worker import rocks_store
from streams.worker.lifecycle import web_host_for
from streams.worker.store import TABLE_ROCKSDB_OPTIONS
from topology.changelogs import CHANGELOG_CONFIG
from topology.topics import TopicId


@dataclass(frozen=True)
class WorkerOptions:
    """Knobs of one worker process."""

    data_dir: Path
    web_port: int
    input_partitions: int
    output_partitions: dict[TopicId, int]
    batch_max: int = 2000
    batch_within: float = 0.05
    tick_interval: float = 1.0
    web_enabled: bool = True
    web_bind: str = "127.0.0.1"  # the web server's address (loopback unless told otherwise)
    loglevel: str = "warn"
    echo: bool = False
    report_every: float = 10.0
    #: POST every alert to this URL too (best-effort, see streams/worker/webhook.py)
    alert_webhook: str | None = None
    #: "batch": input records reach the worker in batches below Faust's stream (tap.py);
    #: "stream": through Faust's per-record stream and ``take_events`` (the A/B baseline)
    consume: str = "batch"
    #: seconds between Faust's offset commits; None: ``commit_interval_for`` the guarantee
    commit_interval: float | None = None
    #: warm standby copies of each table partition on other workers (Faust's table standbys;
    #: none are placed while the group has one member)
    standby_replicas: int = 1
    #: the consumer's static group membership id (None: a dynamic member)
    group_instance_id: str | None = None


#: the most a fetch returns of one partition (aiokafka's max_partition_fetch_bytes; a larger
#: record batch still comes whole)
CONSUMER_FETCH_BYTES = 256 * 1024

#: aiokafka's record-batch size per topic-partition (under the broker's 1 MiB message limit)
PRODUCER_BATCH_BYTES = 512 * 1024


#: seconds between commits by default: under exactly-once outputs become readable only
#: when their transaction commits, so this bounds the decision latency (Kafka Streams'
#: default under exactly-once is 100 ms too); under at-least-once they are readable once
#: sent, and Faust's own 2.8 s is kept
COMMIT_INTERVAL = {"exactly_once": 0.1, "at_least_once": 2.8}


#: seconds after which the group drops a member that sent no heartbeat, and between two
#: heartbeats (at most a third of it)
SESSION_TIMEOUT = 6.0
HEARTBEAT_INTERVAL = 1.5

#: changelog records of a table a standby buffers before it applies them (one WriteBatch)
STANDBY_BUFFER = 100


def commit_interval_for(guarantee: str) -> float:
    """The default seconds between commits under a processing guarantee."""
    return COMMIT_INTERVAL.get(guarantee, COMMIT_INTERVAL["exactly_once"])


def build_app(settings: Settings, options: WorkerOptions) -> faust.App:
    """The Faust app of these settings and options, with its tables (no agent yet)."""
    rocks_store.register()
    app = faust.App(
        settings.app_id,
        **faust_broker_settings(settings),
        store=rocks_store.STORE_URL,
        datadir=str(options.data_dir),
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=options.input_partitions,
        topic_allow_declare=True,
        table_standby_replicas=options.standby_replicas,
        consumer_group_instance_id=options.group_instance_id,
        web_enabled=options.web_enabled,
        web_bind=options.web_bind,
        web_host=web_host_for(options.web_bind),
        web_port=options.web_port,
        producer_linger_ms=10,
        # under exactly-once a mismatch is readable only once its transaction commits:
        # Faust's 2.8 s default put the decision latency's p99 above 3 s
        broker_commit_interval=(options.commit_interval
                                or commit_interval_for(settings.processing_guarantee)),
        # a batch's outputs and changelog records go out in few produce requests: with
        # aiokafka's default 16 KiB batches every ~8 order states filled one and the next
        # send waited for it to drain
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
        # at most 256 KiB per partition per fetch (Faust's default 1 MiB): a worker catching
        # up held ~100 MB more of fetched records for no gain in throughput (bench: 1 MiB
        # 28.7k/s and 420 MB RSS, 256 KiB 28.5k/s and 310 MB, 64 KiB 20.6k/s, starved)
        consumer_max_fetch_size=CONSUMER_FETCH_BYTES,
        # a killed worker's partitions move to another (a standby, or itself restarted)
        # after 6 s, the broker's least session timeout, not Faust's 60 s: with the local
        # state kept and warm standbys the session is most of a takeover's time. The
        # heartbeat runs on Faust's consumer thread, so long batches do not miss it; a worker
        # whose process stalls longer than that loses its partitions (a rebalance, nothing
        # lost). Faust reads BROKER_SESSION_TIMEOUT and BROKER_HEARTBEAT_INTERVAL over these.
        broker_session_timeout=SESSION_TIMEOUT,
        broker_heartbeat_interval=HEARTBEAT_INTERVAL,
        # stop without draining buffered records: what is not committed is redone later
        stream_wait_empty=False,
        loghandlers=[],
    )
    # key_type/value_type bytes make Faust use the raw serializer for the changelogs, so
    # recovery copies our msgpack bytes as they are. (A `schema=` argument does not: the
    # changelog would be decoded as JSON, and on a multi-topic channel it stops delivery.)
    # The changelogs' topic configs (compaction down to about the live state) are the
    # tables' extra configs, so a changelog Faust would create itself gets them too.
    # A standby applies what it read once STANDBY_BUFFER records of a table are buffered
    # (Faust's default: 1,000, so a quiet table's standby could stay that far behind); every
    # buffer is applied at a rebalance, before a standby is taken over.
    for name in (ORDERS_TABLE, META_TABLE):
        app.Table(name, partitions=options.input_partitions, key_type=bytes, value_type=bytes,
                  help=f"crosscheck {name} state", options=dict(TABLE_ROCKSDB_OPTIONS),
                  extra_topic_configs=dict(CHANGELOG_CONFIG),
                  standby_buffer_size=STANDBY_BUFFER)
    app.Table(METRICS_TABLE, partitions=1, key_type=bytes, value_type=bytes,
              help="crosscheck metrics aggregator", options=dict(TABLE_ROCKSDB_OPTIONS),
              extra_topic_configs=dict(CHANGELOG_CONFIG))
    return app
