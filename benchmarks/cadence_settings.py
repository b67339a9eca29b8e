"""Settings for ``benchmarks/cadence_check.py``: exactly ``make run``'s embedded SQLite, at another path.

``DATABASE_URL=sqlite:///...`` would lose the WAL / IMMEDIATE / 20 s timeout options
of the embedded default (``config/env.py`` adds them only to the default path), so the
benchmark keeps the default database settings and moves only the file.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["default"]["NAME"] = os.environ["CADENCE_SQLITE_PATH"]
