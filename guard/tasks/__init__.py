"""Calibrated tasks by name: each turns a :class:`Job` into an :class:`Outcome`.

    mcq        option-ID debiasing by permutation (PriDe, cyclic, full, adaptive)   mcq.py
    classify   label-prior correction (batch, prior-match, contextual, domain)       classify.py
    judge      position swap for pairwise judges                                     judge.py

Their calibration names live in :mod:`guard.calibrations`; reading prompts in
:mod:`guard.tasks.prompt_text`; asking and reading distributions in
:mod:`guard.tasks.distribution`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from guard.tasks import classify, judge, mcq
from guard.tasks.job import Job, Outcome

TASKS: dict[str, Callable[[Job], Awaitable[Outcome]]] = {
    "mcq": mcq.run,
    "classify": classify.run,
    "judge": judge.run,
}

__all__ = ["TASKS", "Job", "Outcome"]
