"""calguard wiring: configuration, upstream clients, pipeline, proxy, decorator, store and CLI.

``guard`` owns every side effect (files, HTTP, time, seeds); the math lives in ``calibrators``
and the checks in ``policies``.
"""

__all__: list[str] = []
