"""The local stack: real Kafka-protocol, MongoDB-protocol and Redis servers, the MCP engine and
Security Hub reference servers, a channel API sandbox, every function as its own process and
the KafkaSource dispatcher wiring them together, for ``make run`` and the test suite.
Development only; never imported by the functions themselves.
"""
