"""analytics-sink: each message, reply and status as one fact row in PostgreSQL (no text)."""

from shared.serving import event_function

handle = event_function("analytics-sink")  # serves its declaration (shared/handlers.py)
