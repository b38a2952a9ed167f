"""``cachegate serve --workers N``: one process per core on one machine.

The ``cachegate serve`` process becomes a small supervisor (:mod:`proxy.workers.supervisor`) that runs N
workers, each a ``cachegate serve`` of its own (the same environment, the flags given as their settings,
``WORKERS=1`` and :data:`~proxy.workers.plan.WORKER_INDEX`). Each worker binds ``HOST:PORT`` itself with
``SO_REUSEPORT`` and the kernel spreads new connections over them; what they share goes through Redis, as
with replicas. :mod:`proxy.workers.plan` holds the decisions, without processes.
"""
