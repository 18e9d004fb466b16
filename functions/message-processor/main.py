"""message-processor: the bot turn for each message KafkaSource delivers from the inbound topic."""

from shared.serving import event_function

handle = event_function("message-processor")  # serves its declaration (shared/handlers.py)
