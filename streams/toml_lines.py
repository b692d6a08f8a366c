"""Line numbers of the keys of a TOML text (tomllib gives values only), for FILE:LINE reasons."""

from __future__ import annotations


class KeyLines:
    """The line where each key path is first written: table headers (``[a.b]``), keys
    (``c = 1``, dotted ``d.e = 2``), and each prefix of them; the keys of an inline table
    (``f = { g = 1 }``) are found on its line too. Values spanning lines (arrays,
    multi-line strings) are stepped over. A path not found falls back to its longest
    found prefix."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        closing = ""  # the delimiter of an open multi-line string
        depth = 0  # open brackets of an array spanning lines
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if closing:
                if closing in line:
                    closing = ""
                continue
            if depth > 0:
                depth += _brackets(line)
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                header = line[2:] if line.startswith("[[") else line[1:]
                table = split_key(_before(header, "]"))
                self._put(table, number)
                continue
            key = _before(line, "=")
            if len(key) == len(line):
                continue
            path = table + split_key(key)
            self._put(path, number)
            value = line[len(key) + 1:].strip()
            if value.startswith("{"):
                self._inline(path, value, number)
            for delimiter in ('"""', "'''"):
                if value.startswith(delimiter) and value.count(delimiter) == 1:
                    closing = delimiter
            if value.startswith("["):
                depth = _brackets(value)

    def _inline(self, path: tuple[str, ...], value: str, number: int) -> None:
        """The keys of an inline table ``{ a = 1, b = "x" }`` (one level) on its line."""
        body = _before(value[1:], "}")
        while body.strip():
            part = _before(body, ",")
            key = _before(part, "=")
            if len(key) < len(part):
                self._put(path + split_key(key), number)
            body = body[len(part) + 1:]

    def _put(self, path: tuple[str, ...], number: int) -> None:
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], number)

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """The line of ``path``, or of its longest prefix found; None if none is."""
        while path:
            found = self._lines.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return None


def _before(text: str, stop: str) -> str:
    """``text`` up to the first ``stop`` outside quotes (all of it if there is none)."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and (quote == "'" or text[i - 1] != "\\"):
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == stop:
            return text[:i]
    return text


def split_key(key: str) -> tuple[str, ...]:
    """A dotted TOML key's parts, unquoted: ``inputs."orders".types`` -> three parts."""
    parts: list[str] = []
    rest = key
    while True:
        part = _before(rest, ".")
        parts.append(part.strip().strip("\"'"))
        if len(part) == len(rest):
            return tuple(parts)
        rest = rest[len(part) + 1:]


def _brackets(text: str) -> int:
    """Opening minus closing square brackets outside strings and comments."""
    count = 0
    for ch in _unquoted(_before(text, "#")):
        count += (ch == "[") - (ch == "]")
    return count


def _unquoted(text: str) -> str:
    out: list[str] = []
    quote = ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        else:
            out.append(ch)
    return "".join(out)
