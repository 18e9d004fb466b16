"""audit-logger: every event on every topic, recorded once in the append-only audit trail."""

from shared.serving import event_function

handle = event_function("audit-logger")  # serves its declaration (shared/handlers.py)
