"""The reliability tests' shared stack (tests/reliability/stack.py)."""

from tests.reliability.stack import matrix  # noqa: F401 (a fixture, used by name)
