"""calguard for inspect_ai (``pip install -e '.[inspect]'``): a multiple-choice solver that
removes the option-ID bias (:func:`debiased_choice`) and a scorer that measures it
(:func:`choice_with_bias`: accuracy, RStd, calls per sample).

```python
from inspect_ai import Task, task
from guard.integrations.inspect import choice_with_bias, debiased_choice

@task
def my_mcq() -> Task:
    return Task(dataset=..., solver=debiased_choice("adaptive", budget=2.0),
                scorer=choice_with_bias())
```
"""

from __future__ import annotations

try:
    import inspect_ai  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "guard.integrations.inspect needs inspect_ai: "
        "pip install -e '.[inspect]' (from the checkout)"
    ) from exc

from guard.integrations.inspect.scorer import calls_per_sample, choice_with_bias, rstd
from guard.integrations.inspect.solver import DEFAULT_TEMPLATE, EVIDENCE, debiased_choice

__all__ = [
    "DEFAULT_TEMPLATE",
    "EVIDENCE",
    "calls_per_sample",
    "choice_with_bias",
    "debiased_choice",
    "rstd",
]
