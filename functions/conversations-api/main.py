"""conversations-api: agents and admin tools read, take over, answer, close and export
conversations (JWT bearer tokens, the tenant from the token)."""

from shared.serving import api

handle = api("conversations-api")  # routes: shared/api/service.py; spec: shared/api/openapi.json
