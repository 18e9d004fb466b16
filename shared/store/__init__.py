"""MongoDB storage. Every document carries ``tenant_id`` and every query filters on it."""
