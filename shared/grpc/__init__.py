"""gRPC clients for the MCP engine and the Security Hub, and their contracts.

- ``protos/``: the ``.proto`` contracts the project owns.
- ``gen/``: stubs generated from them by ``scripts/gen-protos.sh`` (committed, never edited).
- ``channel``: one lazily created channel per target, with retries and deadlines.
- ``engine_client`` / ``security_client``: the ``shared.bot.ports`` protocols over gRPC.

Nothing here connects at import time.
"""
