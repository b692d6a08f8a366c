"""crosscheck stream worker, rules, commands and CLI."""

import os as _os
import sys as _sys

from streams import compiled as _compiled

if _os.environ.get(_compiled.PURE_ENV):
    _compiled.use_pure_python()
elif _stale := _compiled.stale_sources():
    print(f"crosscheck: the compiled core is older than {', '.join(_stale)}: running the pure "
          "Python modules (run `make compile` to rebuild it)", file=_sys.stderr)
    _compiled.use_pure_python()
