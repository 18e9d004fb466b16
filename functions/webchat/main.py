"""webchat: visitor sessions (signed tokens) and messages from the web chat widget."""

from shared.serving import webhook

handle = webhook("webchat")  # serves its channel's SPEC (shared/channels/webchat)
