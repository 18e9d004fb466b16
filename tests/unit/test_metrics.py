"""The metric catalog: every series is ``chat_*``, and every label is one with a bounded set of
values — never a user, chat, conversation or message id (the end-to-end observability test
also checks the values Prometheus scraped)."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from shared import metrics

# Each label and where its values come from: a configured or fixed, short list.
BOUNDED = {
    "tenant": "the tenant directory",
    "channel": "the channel registry (or a function name, for framework rejections)",
    "service": "the function catalog",
    "kind": "MessageKind",
    "type": "the event types",
    "author": "Author",
    "outcome": "each counter's outcomes",
    "reason": "skip and fallback reasons",
    "result": "applied, stale, held",
    "status": "HTTP or delivery status",
    "code": "error codes: ours, gRPC's, the providers'",
    "scope": "rate-limit scopes",
    "dependency": "mcp-engine, security-hub",
    "method": "the gRPC methods",
    "source": "the KafkaSources",
}
UNBOUNDED = ("user", "sender", "chat", "conversation", "message", "id", "phone", "email", "ip")


def catalog() -> dict[str, MetricWrapperBase]:
    return {
        name: value for name, value in vars(metrics).items() if isinstance(value, MetricWrapperBase)
    }


def test_every_metric_is_a_chat_series_with_bounded_labels() -> None:
    found = catalog()
    assert len(found) >= 20
    for name, metric in found.items():
        assert metric._name.startswith("chat_"), name
        assert metric._documentation, name
        for label in metric._labelnames:
            assert label in BOUNDED, f"{metric._name}: label {label!r} is not known to be bounded"
            assert not any(part in label for part in UNBOUNDED), label


def test_no_two_metrics_share_a_name() -> None:
    names = [metric._name for metric in catalog().values()]
    assert len(names) == len(set(names))
