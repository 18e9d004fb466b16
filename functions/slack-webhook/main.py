"""slack-webhook: signed Slack Events API requests (url_verification and event_callback)."""

from shared.serving import webhook

handle = webhook("slack")  # serves its channel's SPEC (shared/channels/slack)
