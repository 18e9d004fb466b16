"""``make deploy-check``: the Knative bundle validated as strictly as a cluster would.

No cluster runs here, so each overlay is rendered with ``kubectl kustomize``
(:mod:`~shared.deploy.bundle`) and every document is checked three ways:

- :mod:`~shared.deploy.schemas` — against the upstream Knative CRDs and the Kubernetes OpenAPI
  schemas, strictly (an unknown field or kind fails);
- :mod:`~shared.deploy.knative` — the value checks of Knative's admission webhooks;
- :mod:`~shared.deploy.project` and :mod:`~shared.deploy.workloads` — this project's rules
  (settings, secrets, probes, concurrency, deadlines, scaling, visibility, images, wiring).

Each problem names the file, the document and the field. A development tool: it is not in the
image (``.dockerignore``) and imports PyYAML, jsonschema and kubernetes-validate lazily.
"""
