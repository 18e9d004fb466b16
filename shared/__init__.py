"""Chat Service shared package: models, events, Kafka, Redis, channels and the web adapter.

Nothing here connects to anything at import time: import time is cold-start time on Knative.
"""
