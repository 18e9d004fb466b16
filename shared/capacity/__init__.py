"""Capacity planning from the benchmark: ``python -m shared.capacity --messages-per-day N``.

:mod:`.model` is the arithmetic (pure), :mod:`.inputs` where its numbers come from (the latest
``bench-results/latest.json`` and documented assumptions, the production overlay's partitions
and ``max-scale``). A development tool: not in the image (``.dockerignore``).
"""
