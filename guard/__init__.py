"""calguard wiring: configuration, upstream clients, pipeline, proxy, decorator, store and CLI.

``guard`` owns every side effect (files, HTTP, time, seeds); the math lives in ``calibrators``
and the checks in ``policies``. In-process use::

    import guard
    client = guard.wrap(OpenAI())
    @guard.calibrated(calibration="pride")
    def ask(messages, **kw): ...
"""

from guard.wrap import calibrated, wrap

__all__ = ["calibrated", "wrap"]
