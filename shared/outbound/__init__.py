"""Sending replies: render per channel, send over HTTP, record the delivery.

- :mod:`~shared.outbound.render` (with ``whatsapp``, ``slack``, ``telegram``): a reply becomes
  an :class:`~shared.outbound.api.ApiRequest`, purely.
- :mod:`~shared.outbound.send`: the HTTP call, and what the answer means (sent, retry later,
  never).
- :mod:`~shared.outbound.webchat`: our own widget, which reads replies from storage.
- :mod:`~shared.outbound.delivery`: the ``delivery`` sub-document of an outbound ``messages``
  document (lease, attempts, outcome) — see ``docs/data-model.md``.
- :mod:`~shared.outbound.dispatcher`: one ``com.chatbot.message.outbound.v1`` event, end to end.
"""
