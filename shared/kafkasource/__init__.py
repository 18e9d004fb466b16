"""Knative KafkaSources: the ``kafka-sources/`` manifests and the local dispatcher reading them.

- :mod:`~shared.kafkasource.manifests`: the manifests as frozen values (one source of topics,
  consumer groups, sinks and delivery policy for Knative, the local stack and the tests);
- :mod:`~shared.kafkasource.crd`: a CRD's schema as JSON Schema, to validate them offline;
- :mod:`~shared.kafkasource.delivery`, :mod:`~shared.kafkasource.dispatcher`,
  :mod:`~shared.kafkasource.runner`: what Knative Eventing does with them, on one machine
  (``python -m shared.kafkasource``).
"""
