"""whatsapp-webhook: Meta's subscription handshake and signed WhatsApp Cloud API webhooks."""

from shared.serving import webhook

handle = webhook("whatsapp")  # serves its channel's SPEC (shared/channels/whatsapp)
