"""Reference gRPC servers for the services the project does not run in production itself.

``mcp_engine`` (a rule-based bot) and ``security_hub`` (a blocklist and PII redaction) speak
the project's own contracts (``shared/grpc/protos``), so the local stack runs on one machine
and the integration tests talk real gRPC. Not production services: no auth, no TLS.

    python -m shared.refservers.mcp_engine --port 50051 [--rules FILE]
    python -m shared.refservers.security_hub --port 50052 [--blocklist word,word]
"""
