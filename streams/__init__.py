"""crosscheck stream worker, rules, commands and CLI."""

from streams import compiled as _compiled

_compiled.select()  # the compiled core or pure Python, before any module of either loads
