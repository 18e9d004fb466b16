"""The analytics store: facts without personal data in PostgreSQL, and reporting views on them.

- :mod:`~shared.analytics.sink`: the ``analytics-sink`` event handler (one fact per event).
- :mod:`~shared.analytics.facts`, :mod:`~shared.analytics.hashing`: event → fact, keyed hashes.
- :mod:`~shared.analytics.migrate`: the versioned SQL of ``migrations/`` (tables, views).
- :func:`daily_report`: one tenant's daily numbers (the reports endpoint, the ``report``
  command); :func:`erase_user`: one end user's rows gone (the GDPR erase).
- ``python -m shared.analytics migrate | report``.

Schema and views: docs/data-model.md; why PostgreSQL, hashing, BRIN: docs/architecture.md.
Importing this package imports no database driver: psycopg is loaded on first use.
"""

from shared.analytics.db import get_pool
from shared.analytics.erasure import erase_user
from shared.analytics.reports import daily_report

__all__ = ["daily_report", "erase_user", "get_pool"]
