"""messenger-webhook: Facebook Messenger Platform webhooks (Page messages, postbacks, receipts)."""

from shared.serving import webhook

handle = webhook("messenger")  # serves its channel's SPEC (shared/channels/messenger)
