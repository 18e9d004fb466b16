"""One module per channel: ``verify_*`` (pure, injected clock), ``parse`` (payload → canonical
model) and ``handle`` (a :class:`~shared.web.WebRequest` in, a response out, publishing through
:class:`~shared.ingress.Ingress`). A new channel is one module here plus one thin function.
"""
