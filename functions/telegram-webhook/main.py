"""telegram-webhook: Telegram Bot API updates, one webhook URL per bot (/webhook/<bot_id>)."""

from shared.serving import webhook

handle = webhook("telegram")  # serves its channel's SPEC (shared/channels/telegram)
