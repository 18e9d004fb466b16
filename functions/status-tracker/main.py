"""status-tracker: delivery statuses from the status topic, applied forward-only."""

from shared.serving import event_function

handle = event_function("status-tracker")  # serves its declaration (shared/handlers.py)
