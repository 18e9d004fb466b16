"""The local stack: real Kafka-protocol, MongoDB-protocol and Redis servers plus every function
as its own process, for ``make run`` and the test suite. Development only; never imported by
the functions themselves.
"""
