"""Every route of the webchat function, in one table: path → method → handler.

API routes answer the CORS preflight (``OPTIONS``) with the methods they take; the widget's
files are plain GETs. An unknown path is 404, a method the path does not take 405 with
``Allow``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shared.channels.webchat import cors, inbound, read, static, stream
from shared.dataclass import dataclass
from shared.errors import MethodNotAllowed, NotFound
from shared.ingress import Ingress
from shared.web import WebRequest, WebResponse

Handler = Callable[[WebRequest, Ingress], WebResponse]
STREAM_PATH = "/stream"


@dataclass(frozen=True)
class Route:
    methods: Mapping[str, Handler]
    api: bool = True  # called by the widget from the host page's origin: CORS applies

    @property
    def allowed(self) -> tuple[str, ...]:
        return (*self.methods, "OPTIONS") if self.api else tuple(self.methods)


ROUTES: Mapping[str, Route] = {
    inbound.SESSIONS_PATH: Route({"POST": inbound.start_session}),
    inbound.RESUME_PATH: Route({"POST": inbound.resume_session}),
    inbound.MESSAGES_PATH: Route({"GET": read.list_messages, "POST": inbound.post_message}),
    STREAM_PATH: Route({"GET": stream.stream}),
    static.WIDGET_PATH: Route({"GET": static.widget, "HEAD": static.widget}, api=False),
    static.DEMO_PATH: Route({"GET": static.demo_page, "HEAD": static.demo_page}, api=False),
}


def handle(request: WebRequest, ingress: Ingress) -> WebResponse:
    route = ROUTES.get(request.path)
    if route is None:
        raise NotFound(f"no route {request.path}")
    if request.method == "OPTIONS" and route.api:
        return cors.preflight(request.header("Origin"), ingress.tenants, tuple(route.methods))
    handler = route.methods.get(request.method)
    if handler is None:
        raise MethodNotAllowed(
            f"method {request.method} is not allowed here", allowed=route.allowed
        )
    return handler(request, ingress)
