"""Reading a sources file: every problem as FILE:LINE: reason, before anything runs."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.errors import ConfigError
from streams.sources.fields import FieldChecker, Path_, describe, dotted
from streams.sources.spec import (
    COMMON_REQUIRED,
    ENTITY_FIELD,
    EVENT_TYPES,
    OPTIONAL,
    REQUIRED,
    SKIP,
    WITH_ITEMS,
    EventIdRule,
    FieldRef,
    Format,
    InputSpec,
    ItemsRef,
    SourcesFile,
)
from streams.toml_lines import KeyLines
from topology.topics import TopicId

_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_INPUTS = {t.value: t for t in EVENT_TYPES}
_BASE_KEYS = ("topic", "format", "event_id", "order_id", "event_time", "type", "types")
_DEBEZIUM_KEYS = ("unwrap", "table", "key")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a sources file, at a line (None: not known)."""

    line: int | None
    reason: str


class SourcesFileError(ConfigError):
    """A sources file that cannot be used: every problem, ``FILE:LINE: reason`` each."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.reason))
        super().__init__("\n".join(f"{name}:{p.line}: {p.reason}" if p.line else
                                   f"{name}: {p.reason}" for p in self.problems))


def load_sources(path: str | Path) -> SourcesFile:
    """Read and check a sources file; SourcesFileError (a ConfigError) if it cannot be used."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourcesFileError(name, [Problem(None, "no such sources file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesFileError(name, [Problem(None, f"cannot be read ({exc})")]) from None
    return parse_sources(text, name)


def parse_sources(text: str, name: str = "sources.toml") -> SourcesFile:
    """Check the text of a sources file called ``name`` (for the messages)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _AT_LINE.search(message)
        line = int(at.group(1)) if at else max(1, len(text.splitlines()))
        reason = _AT_LINE.sub("", message) if at else message
        raise SourcesFileError(name, [Problem(line, f"TOML syntax: {reason}")]) from None
    return _Checker(KeyLines(text)).check(doc, name)


class _Checker:
    """Collects the problems of a parsed document, each at its key's line."""

    def __init__(self, lines: KeyLines) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def problem(self, path: Path_, reason: str) -> None:
        self.problems.append(Problem(self.lines.line_of(path), reason))

    def check(self, doc: dict[str, Any], name: str) -> SourcesFile:
        inputs: dict[TopicId, InputSpec] = {}
        cdc: dict[str, Any] = {}
        for key, value in doc.items():
            if key == "inputs":
                if self._table(("inputs",), value):
                    for input_name, body in value.items():
                        spec = self._input(input_name, body)
                        if spec is not None:
                            inputs[spec.input] = spec
            elif key == "cdc":
                if self._table(("cdc",), value):
                    cdc = value
            else:
                self._unknown((key,), ("inputs", "cdc"), "top-level key")
        if "inputs" not in doc:
            self.problems.append(Problem(None, "no [inputs.<input>] table: name at least one "
                                               "input (orders, payments, inventory, shipping)"))
        self._one_input_per_topic(inputs)
        if self.problems:
            raise SourcesFileError(name, self.problems)
        return SourcesFile(name, inputs, cdc)

    def _one_input_per_topic(self, inputs: dict[TopicId, InputSpec]) -> None:
        seen: dict[str, TopicId] = {}
        for topic, spec in inputs.items():
            if not spec.mapped:
                continue
            other = seen.setdefault(spec.topic, topic)
            if other is not topic:
                self.problem(("inputs", topic.value, "topic"),
                             f"[inputs.{topic.value}] topic: {spec.topic!r} is also the topic "
                             f"of [inputs.{other.value}]; a topic is read by one input")

    # -- one input -------------------------------------------------------------------------

    def _input(self, name: str, body: Any) -> InputSpec | None:
        path: Path_ = ("inputs", name)
        topic_id = _INPUTS.get(name)
        if topic_id is None:
            self._unknown(path, tuple(_INPUTS), "input")
            return None
        if not self._table(path, body):
            return None
        where = f"[inputs.{name}]"
        fmt = self._format(path, body.get("format"))
        if fmt is None:
            return None
        if fmt is Format.AVRO:
            for key in body:
                if key != "format":
                    self.problem((*path, key), f"{where} {key}: an avro input is read from the "
                                 "contract's topic (CROSSCHECK_TOPICS renames it); its table "
                                 "takes no key but format")
            return InputSpec(topic_id, "", fmt, self.lines.line_of(path))
        allowed = self._allowed(topic_id, fmt)
        for key in body:
            if key not in allowed:
                self._wrong_key(topic_id, fmt, key, allowed)
        topic = body.get("topic")
        if not isinstance(topic, str) or not topic.strip():
            self.problem(path + (("topic",) if "topic" in body else ()),
                         f"{where} topic: " + ("is missing (the topic holding the input's "
                                               "records)" if topic is None else
                                               f"expected a topic name, got {describe(topic)}"))
            topic = ""
        fields = FieldChecker(self, topic_id, fmt)
        refs: dict[str, FieldRef] = {}
        for key in (*COMMON_REQUIRED, *REQUIRED[topic_id], *OPTIONAL[topic_id]):
            if key in body:
                ref = fields.field(key, body[key])
                if ref is not None:
                    refs[key] = ref
            elif key not in OPTIONAL[topic_id]:
                self.problem(path, f"{where} {key}: is not mapped (required: which "
                                   f"{'field' if fmt is Format.JSON else 'column'} holds it)")
        items = self._items(topic_id, fields, body)
        type_field, types = self._types(topic_id, fields, body)
        unwrap = self._unwrap(path, body) if fmt is Format.DEBEZIUM else False
        event_rule, event_ref = self._event_id(topic_id, fmt, unwrap, fields, body)
        if event_ref is not None:
            refs["event_id"] = event_ref
        table, key = ("", ())
        if fmt is Format.DEBEZIUM:
            table = self._table_name(path, topic, body.get("table"))
            key = self._key(topic_id, refs, body.get("key"))
        return InputSpec(topic_id, topic.strip(), fmt, self.lines.line_of(path), refs, items,
                         type_field, types, unwrap, table, key, event_rule)

    def _allowed(self, topic_id: TopicId, fmt: Format) -> tuple[str, ...]:
        keys = _BASE_KEYS + REQUIRED[topic_id] + OPTIONAL[topic_id]
        if topic_id in WITH_ITEMS:
            keys += ("items",)
        return keys + (_DEBEZIUM_KEYS if fmt is Format.DEBEZIUM else ())

    def _wrong_key(self, topic_id: TopicId, fmt: Format, key: str,
                   allowed: tuple[str, ...]) -> None:
        path = ("inputs", topic_id.value, key)
        where = f"[inputs.{topic_id.value}]"
        if key in _DEBEZIUM_KEYS:
            self.problem(path, f"{where} {key}: only debezium inputs have it (this one is "
                               f"{fmt.value})")
            return
        elsewhere = [t.value for t in REQUIRED if key in REQUIRED[t] + OPTIONAL[t]
                     or (key == "items" and t in WITH_ITEMS)]
        if elsewhere:
            self.problem(path, f"{where} {key}: {topic_id.value} events have no {key} (it is a "
                               f"field of {', '.join(elsewhere)})")
            return
        self._unknown(path, allowed, "key", f" in {where}")

    def _format(self, path: Path_, value: Any) -> Format | None:
        where = f"[inputs.{path[1]}] format"
        names = ", ".join(f.value for f in Format)
        if value is None:
            self.problem(path, f"{where}: is missing ({names})")
            return None
        try:
            return Format(value.strip().lower() if isinstance(value, str) else value)
        except ValueError:
            self.problem((*path, "format"), f"{where}: {describe(value)} is not a format "
                                             f"({names})")
            return None

    def _items(self, topic_id: TopicId, fields: FieldChecker, body: dict[str, Any]
               ) -> ItemsRef | None:
        if topic_id not in WITH_ITEMS:
            return None
        if "items" not in body:
            self.problem(("inputs", topic_id.value), f"[inputs.{topic_id.value}] items: is not "
                         "mapped (required: the array of item lines)")
            return None
        return fields.items(body["items"])

    def _types(self, topic_id: TopicId, fields: FieldChecker, body: dict[str, Any]
               ) -> tuple[FieldRef | None, dict[str, str] | None]:
        where = f"[inputs.{topic_id.value}]"
        type_field = fields.field("type", body["type"]) if "type" in body else None
        if "type" not in body:
            self.problem(("inputs", topic_id.value), f"{where} type: is not mapped (required: "
                                                     "the field holding the status)")
        raw = body.get("types")
        if raw is None:
            return type_field, None
        path = ("inputs", topic_id.value, "types")
        if not self._table(path, raw):
            return type_field, None
        known = list(EVENT_TYPES[topic_id])
        types: dict[str, str] = {}
        for status, target in raw.items():
            at = (*path, status)
            if not isinstance(target, str):
                self.problem(at, f"{where} types.{status}: expected an event type "
                                 f"({', '.join(known)}) or \"skip\", got {describe(target)}")
            elif target.strip() == SKIP:
                types[status] = SKIP
            elif target.strip().upper() in known:
                types[status] = target.strip().upper()
            else:
                close = difflib.get_close_matches(target.upper(), known, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                self.problem(at, f"{where} types.{status}: {target!r} is not a {topic_id.value} "
                                 f"event type ({hint}types: {', '.join(known)}, or \"skip\")")
        if not types and raw == {}:
            self.problem(path, f"{where} types: is empty (map each status to an event type)")
        return type_field, types

    def _unwrap(self, path: Path_, body: dict[str, Any]) -> bool:
        value = body.get("unwrap", False)
        if isinstance(value, bool):
            return value
        self.problem((*path, "unwrap"), f"[inputs.{path[1]}] unwrap: expected true or false, "
                                         f"got {describe(value)}")
        return False

    def _event_id(self, topic_id: TopicId, fmt: Format, unwrap: bool, fields: FieldChecker,
                  body: dict[str, Any]) -> tuple[EventIdRule, FieldRef | None]:
        where = f"[inputs.{topic_id.value}] event_id"
        path = ("inputs", topic_id.value, "event_id")
        value = body.get("event_id")
        if fmt is Format.JSON:
            if value is None:
                self.problem(path[:2], f"{where}: is not mapped (required for json inputs: the "
                                       "field holding a unique id of the event)")
                return EventIdRule.FIELD, None
            return EventIdRule.FIELD, fields.field("event_id", value)
        if value is None:
            return (EventIdRule.STATUS if unwrap else EventIdRule.LSN), None
        if isinstance(value, str) and value.strip() in (EventIdRule.LSN, EventIdRule.STATUS):
            rule = EventIdRule(value.strip())
            if rule is EventIdRule.LSN and unwrap:
                self.problem(path, f"{where}: \"lsn\" needs the envelope's before image: an "
                                   "unwrapped row cannot tell a status change from another "
                                   "update, so each update would be a new event (use \"status\", "
                                   "or unwrap = false with REPLICA IDENTITY FULL)")
            return rule, None
        return EventIdRule.FIELD, fields.field("event_id", value)

    def _table_name(self, path: Path_, topic: str, value: Any) -> str:
        where = f"[inputs.{path[1]}] table"
        if value is None:
            parts = topic.split(".")
            if len(parts) >= 3:
                return ".".join(parts[-2:])
            if topic:
                self.problem((*path, "topic"), f"{where}: not given, and the topic {topic!r} "
                                                "is not <prefix>.<schema>.<table> (name the "
                                                "table: table = \"public.payments\")")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem((*path, "table"), f"{where}: expected \"schema.table\", got "
                                            f"{describe(value)}")
            return ""
        return value.strip()

    def _key(self, topic_id: TopicId, refs: dict[str, FieldRef], value: Any) -> tuple[str, ...]:
        where = f"[inputs.{topic_id.value}] key"
        path = ("inputs", topic_id.value, "key")
        if value is None:
            entity = refs.get(ENTITY_FIELD[topic_id])
            if entity is not None and entity.path and entity.meta is None:
                return (dotted(entity.path),)
            if entity is not None:
                self.problem(path[:2], f"{where}: not given, and {entity.rule} is not a column "
                                       "(name the primary key: key = [\"id\"])")
            return ()
        columns = [value] if isinstance(value, str) else value
        if (not isinstance(columns, list) or not columns
                or not all(isinstance(c, str) and c.strip() for c in columns)):
            self.problem(path, f"{where}: expected the primary key's columns, e.g. [\"id\"], got "
                               f"{describe(value)}")
            return ()
        return tuple(c.strip() for c in columns)

    # -- helpers ---------------------------------------------------------------------------

    def _table(self, path: Path_, value: Any) -> bool:
        if isinstance(value, dict):
            return True
        self.problem(path, f"{'.'.join(path)}: expected a table, got {describe(value)}")
        return False

    def _unknown(self, path: Path_, known: tuple[str, ...], what: str, where: str = "") -> None:
        key = path[-1]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        self.problem(path, f"unknown {what} {key!r}{where} ({hint})")
