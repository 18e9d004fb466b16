"""outbound-dispatcher: replies from the outbound topic, sent through the channel APIs."""

from shared.serving import event_function

handle = event_function("outbound-dispatcher")  # serves its declaration (shared/handlers.py)
