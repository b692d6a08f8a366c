"""The sources file: what it may say, and every refusal as FILE:LINE: reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from shop_json import SOURCES_JSON

from schemas.validation import TYPES
from streams.cli import ingest_cmd
from streams.cli.main import cli
from streams.sources import Format, SourcesFileError, load_sources, parse_sources
from streams.sources.spec import EVENT_TYPES, SKIP, EventIdRule
from streams.toml_lines import KeyLines
from topology.topics import TopicId

PAYMENTS_JSON = """\
[inputs.payments]
topic = "shop.payments"
format = "json"
event_id = "id"
order_id = "order.no"
payment_id = "payment.id"
amount = "payment.amount"
currency = "payment.currency"
event_time = "occurred_at"
type = "event"
[inputs.payments.types]
"payment.succeeded" = "SUCCEEDED"
"payment.failed" = "FAILED"
"""

ORDERS_DEBEZIUM = """\
[inputs.orders]
topic = "shop.public.orders"
format = "debezium"
order_id = "id"
user_id = "customer_id"
total_amount = "total_cents"
currency = "currency"
items = { field = "items", sku = "sku", quantity = "qty", unit_price = "price_cents" }
event_time = "updated_at"
type = "status"
[inputs.orders.types]
placed = "PLACED"
cancelled = "CANCELLED"
"""


def refused(text: str) -> list[tuple[int | None, str]]:
    """The (line, reason) of each problem of a sources file that must be refused."""
    with pytest.raises(SourcesFileError) as caught:
        parse_sources(text, "shop.toml")
    message = str(caught.value)
    for problem in caught.value.problems:
        where = f"shop.toml:{problem.line}: " if problem.line else "shop.toml: "
        assert where + problem.reason in message
    return [(p.line, p.reason) for p in caught.value.problems]


def test_a_json_input_maps_each_field_and_status() -> None:
    sources = parse_sources(PAYMENTS_JSON, "shop.toml")
    spec = sources.inputs[TopicId.PAYMENTS]
    assert (spec.topic, spec.format, spec.line) == ("shop.payments", Format.JSON, 1)
    assert spec.fields["amount"].path == ("payment", "amount")
    assert spec.fields["amount"].rule == 'amount = "payment.amount"'
    assert spec.fields["event_id"].path == ("id",)
    assert spec.event_id_rule is EventIdRule.FIELD
    assert spec.types == {"payment.succeeded": "SUCCEEDED", "payment.failed": "FAILED"}
    assert sources.by_topic() == {"shop.payments": spec}
    assert [s.input for s in sources.mapped()] == [TopicId.PAYMENTS]


def test_a_debezium_input_defaults_its_table_key_and_event_id() -> None:
    spec = parse_sources(ORDERS_DEBEZIUM).inputs[TopicId.ORDERS]
    assert spec.format is Format.DEBEZIUM and not spec.unwrap
    assert spec.table == "public.orders"  # the topic's last two parts
    assert spec.key == ("id",)  # the entity's column: an order's own id
    assert spec.event_id_rule is EventIdRule.LSN
    assert spec.items is not None and spec.items.unit_price == ("price_cents",)
    unwrapped = parse_sources(ORDERS_DEBEZIUM.replace('format = "debezium"',
                                                      'format = "debezium"\nunwrap = true\n'
                                                      'key = ["tenant", "id"]\n'
                                                      'table = "sales.orders"'))
    spec = unwrapped.inputs[TopicId.ORDERS]
    assert spec.unwrap and spec.event_id_rule is EventIdRule.STATUS
    assert (spec.table, spec.key) == ("sales.orders", ("tenant", "id"))


def test_the_json_example_reads() -> None:
    sources = load_sources(SOURCES_JSON)
    assert [s.input for s in sources.mapped()] == [TopicId.ORDERS, TopicId.PAYMENTS,
                                                   TopicId.INVENTORY, TopicId.SHIPPING]
    assert sources.inputs[TopicId.PAYMENTS].types == {
        "SUCCESS": "SUCCEEDED", "FAIL": "FAILED", "REFUND": "REFUNDED", "PENDING": SKIP}
    assert sources.inputs[TopicId.ORDERS].fields["total_amount"].decimals == 2


@pytest.mark.parametrize("topic", list(EVENT_TYPES))
def test_every_type_the_engine_judges_can_be_a_status_target(topic: TopicId) -> None:
    assert TYPES[topic] == set(EVENT_TYPES[topic])
    section = {TopicId.ORDERS: ORDERS_DEBEZIUM, TopicId.PAYMENTS: PAYMENTS_JSON}.get(topic)
    if section is None:
        return
    lines = "".join(f's{i} = "{kind}"\n' for i, kind in enumerate(EVENT_TYPES[topic]))
    text = section.split("types]\n")[0] + "types]\n" + lines
    spec = parse_sources(text).inputs[topic]
    assert spec.types is not None and set(spec.types.values()) == set(EVENT_TYPES[topic])


def test_an_avro_input_takes_only_its_format() -> None:
    sources = parse_sources('[inputs.shipping]\nformat = "avro"\n' + PAYMENTS_JSON)
    assert not sources.inputs[TopicId.SHIPPING].mapped
    assert [s.input for s in sources.mapped()] == [TopicId.PAYMENTS]
    problems = refused('[inputs.shipping]\nformat = "avro"\ntopic = "ship.v1"\n')
    assert problems == [(3, "[inputs.shipping] topic: an avro input is read from the "
                            "contract's topic (CROSSCHECK_TOPICS renames it); its table "
                            "takes no key but format")]


def test_an_unknown_input_is_refused_at_its_line() -> None:
    assert refused(PAYMENTS_JSON + '\n[inputs.payment]\nformat = "json"\n') == [
        (15, "unknown input 'payment' (did you mean payments?)")]
    assert refused('[inputs.refunds]\nformat = "json"\n') == [
        (1, "unknown input 'refunds' (known: orders, payments, inventory, shipping)")]


def test_a_missing_required_field_mapping_is_refused() -> None:
    text = PAYMENTS_JSON.replace('amount = "payment.amount"\n', "")
    assert refused(text) == [(1, "[inputs.payments] amount: is not mapped (required: which "
                                 "field holds it)")]
    text = ORDERS_DEBEZIUM.replace('type = "status"\n', "").replace(
        'items = { field = "items", sku = "sku", quantity = "qty", unit_price = "price_cents" }'
        "\n", "")
    assert refused(text) == [
        (1, "[inputs.orders] items: is not mapped (required: the array of item lines)"),
        (1, "[inputs.orders] type: is not mapped (required: the field holding the status)")]


def test_a_json_input_needs_an_event_id_and_a_topic() -> None:
    text = PAYMENTS_JSON.replace('event_id = "id"\n', "").replace('topic = "shop.payments"\n',
                                                                  "")
    assert refused(text) == [
        (1, "[inputs.payments] event_id: is not mapped (required for json inputs: the field "
            "holding a unique id of the event)"),
        (1, "[inputs.payments] topic: is missing (the topic holding the input's records)")]


def test_a_status_mapped_to_an_unknown_type_is_refused() -> None:
    text = PAYMENTS_JSON + '"payment.refunded" = "REFUND"\nlost = 3\n'
    assert refused(text) == [
        (14, "[inputs.payments] types.payment.refunded: 'REFUND' is not a payments event type "
             "(did you mean REFUNDED? types: SUCCEEDED, FAILED, REFUNDED, or \"skip\")"),
        (15, "[inputs.payments] types.lost: expected an event type (SUCCEEDED, FAILED, "
             "REFUNDED) or \"skip\", got integer 3")]
    # an order type is not a payments type
    assert refused(PAYMENTS_JSON + 'x = "PLACED"\n')[0][0] == 14


def test_a_bad_format_or_an_unknown_key_is_refused() -> None:
    assert refused(PAYMENTS_JSON.replace('"json"', '"xml"')) == [
        (3, "[inputs.payments] format: string 'xml' is not a format (avro, json, debezium)")]
    assert refused(PAYMENTS_JSON.replace('format = "json"\n', "")) == [
        (1, "[inputs.payments] format: is missing (avro, json, debezium)")]
    assert refused(PAYMENTS_JSON.replace('type = "event"', 'type = "event"\nchanel = "c"')) == [
        (11, "unknown key 'chanel' in [inputs.payments] (did you mean channel?)")]
    assert refused(PAYMENTS_JSON.replace('type = "event"', 'type = "event"\nsku = "s"')) == [
        (11, "[inputs.payments] sku: payments events have no sku (it is a field of inventory)")]
    assert refused(PAYMENTS_JSON.replace('type = "event"', 'type = "event"\nunwrap = true')) == [
        (11, "[inputs.payments] unwrap: only debezium inputs have it (this one is json)")]
    assert refused(PAYMENTS_JSON + '[mapping]\nx = 1\n') == [
        (14, "unknown top-level key 'mapping' (known: inputs, cdc)")]


def test_field_forms_are_checked() -> None:
    def one(old: str, new: str) -> tuple[int | None, str]:
        (problem,) = refused(PAYMENTS_JSON.replace(old, new))
        return problem

    assert one('order_id = "order.no"', 'order_id = { value = "o-1" }') == (
        5, "[inputs.payments] order_id: cannot be a constant (it must come from the record)")
    assert one('event_time = "occurred_at"', 'event_time = { field = "ts", unit = "min" }') == (
        9, "[inputs.payments] event_time: unit: string 'min' is not s, ms, us or ns")
    assert one('currency = "payment.currency"',
               'currency = { field = "c", decimals = 2 }')[1] == (
        "[inputs.payments] currency: decimals: only amounts have decimals (amount, "
        "total_amount and the items' unit_price)")
    assert one('amount = "payment.amount"', 'amount = "payment..amount"') == (
        7, "[inputs.payments] amount: 'payment..amount' is not a path (names separated by "
           "dots, e.g. \"payment.amount\")")
    assert one('event_time = "occurred_at"', 'event_time = "@commit"') == (
        9, "[inputs.payments] event_time: @commit is the commit time of a change: debezium "
           "inputs only")
    assert one('amount = "payment.amount"', "amount = 7") == (
        7, "[inputs.payments] amount: expected a field path (a string) or a table such as "
           "{ field = \"...\" }, got integer 7")
    assert one('currency = "payment.currency"', 'currency = { field = "c", value = "CNY" }')[1] \
        == "[inputs.payments] currency: give either field (where to read it) or value (a " \
           "constant)"
    # what is allowed
    sources = parse_sources(PAYMENTS_JSON.replace('currency = "payment.currency"',
                                                  'currency = { value = "CNY" }')
                            .replace('order_id = "order.no"', 'order_id = "@key"')
                            .replace('event_time = "occurred_at"', 'event_time = "@timestamp"'))
    fields = sources.inputs[TopicId.PAYMENTS].fields
    assert fields["currency"].has_constant and fields["currency"].constant == "CNY"
    assert fields["order_id"].meta is not None and fields["event_time"].meta is not None


def test_debezium_keys_are_checked() -> None:
    unwrapped = ORDERS_DEBEZIUM.replace('format = "debezium"',
                                        'format = "debezium"\nunwrap = true\nevent_id = "lsn"')
    assert refused(unwrapped) == [
        (5, "[inputs.orders] event_id: \"lsn\" needs the envelope's before image: an unwrapped "
            "row cannot tell a status change from another update, so each update would be a "
            "new event (use \"status\", or unwrap = false with REPLICA IDENTITY FULL)")]
    no_table = ORDERS_DEBEZIUM.replace('"shop.public.orders"', '"orders"')
    assert refused(no_table) == [
        (2, "[inputs.orders] table: not given, and the topic 'orders' is not "
            "<prefix>.<schema>.<table> (name the table: table = \"public.payments\")")]
    assert refused(ORDERS_DEBEZIUM.replace('format = "debezium"',
                                           'format = "debezium"\nunwrap = "yes"\nkey = []')) == [
        (4, "[inputs.orders] unwrap: expected true or false, got string 'yes'"),
        (5, "[inputs.orders] key: expected the primary key's columns, e.g. [\"id\"], got "
            "array []")]


def test_one_topic_is_read_by_one_input() -> None:
    inventory = ('[inputs.inventory]\ntopic = "shop.payments"\nformat = "json"\n'
                 'event_id = "id"\norder_id = "o"\nreservation_id = "r"\nsku = "s"\n'
                 'quantity = "q"\nevent_time = "t"\ntype = "a"\n')
    assert refused(PAYMENTS_JSON + inventory) == [
        (15, "[inputs.inventory] topic: 'shop.payments' is also the topic of "
             "[inputs.payments]; a topic is read by one input")]


def test_syntax_errors_empty_files_and_missing_files(tmp_path: Path) -> None:
    assert refused('[inputs.payments]\ntopic = "a\n') == [
        (2, "TOML syntax: Illegal character '\\n'")]
    assert refused("# nothing\n") == [
        (None, "no [inputs.<input>] table: name at least one input (orders, payments, "
               "inventory, shipping)")]
    with pytest.raises(SourcesFileError, match=r"nope\.toml: no such sources file"):
        load_sources(tmp_path / "nope.toml")


def test_all_problems_are_reported_at_once_in_line_order() -> None:
    text = PAYMENTS_JSON.replace('"json"', '"jsn"') + '\n[inputs.stock]\nformat = "json"\n'
    assert [line for line, _ in refused(text)] == [3, 15]


def test_key_lines_find_tables_keys_and_inline_tables() -> None:
    lines = KeyLines('# c\n[a.b]\nx = 1\n"y.z" = { p = 1, q = "a,b" }\narr = [\n 1,\n]\nw = 2\n'
                     "[c]\nm = '''\nk = 3\n'''\nn = 4\n")
    assert lines.line_of(("a", "b")) == 2 and lines.line_of(("a",)) == 2
    assert lines.line_of(("a", "b", "x")) == 3
    assert lines.line_of(("a", "b", "y.z", "q")) == 4
    assert lines.line_of(("a", "b", "w")) == 8
    assert lines.line_of(("c", "k")) == 9  # inside a multi-line string: not a key
    assert lines.line_of(("c", "n")) == 13
    assert lines.line_of(("zz",)) is None


def test_ingest_refuses_a_bad_sources_file_before_it_connects(tmp_path: Path) -> None:
    ingest_cmd.register(cli)
    path = tmp_path / "shop.toml"
    path.write_text(PAYMENTS_JSON.replace('"SUCCEEDED"', '"PLACED"'))
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # nothing listens: never reached
    for args, extra in ((["ingest", "--sources", str(path)], {}),
                        (["ingest"], {"CROSSCHECK_SOURCES_FILE": str(path)})):
        result = CliRunner().invoke(cli, args, env={**env, **extra})
        assert result.exit_code == 2, result.output
        assert f"{path}:12: [inputs.payments] types.payment.succeeded: 'PLACED' is not a " \
               "payments event type" in result.output
