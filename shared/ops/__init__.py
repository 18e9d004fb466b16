"""Operations commands: deploy, roll back, canary analysis, health, backup, dead letters.

Each is ``python -m shared.ops.<command>`` (the ``scripts/*.sh`` wrappers call them). They talk
to the cluster only through ``kubectl`` and ``kn`` (:mod:`shared.ops.cluster`), to MongoDB
through pymongo and to Kafka through :mod:`shared.kafka`, and are in the image, so they can also
run in the cluster (``kubectl run --image …``).
"""
