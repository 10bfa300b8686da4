"""``max_length``: the text is longer than allowed, in characters or in words."""

from __future__ import annotations

from pydantic import Field, model_validator

from policies.base import Context, Verdict
from policies.registry import BuiltinPolicy, PolicyParams, register


class MaxLengthParams(PolicyParams):
    """``max_chars``: most characters (code points) allowed; ``max_words``: most
    whitespace-separated words allowed. Set at least one."""

    max_chars: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_limit(self) -> MaxLengthParams:
        if self.max_chars is None and self.max_words is None:
            raise ValueError("set max_chars, max_words or both")
        return self


@register
class MaxLength(BuiltinPolicy[MaxLengthParams]):
    """Hits when either limit is exceeded; applies to prompts and responses alike."""

    name = "max_length"
    params_model = MaxLengthParams

    def check(self, ctx: Context) -> Verdict:
        over = []
        chars, limit = len(ctx.text), self.params.max_chars
        if limit is not None and chars > limit:
            over.append(f"{chars} characters > {limit}")
        words, limit = len(ctx.text.split()), self.params.max_words
        if limit is not None and words > limit:
            over.append(f"{words} words > {limit}")
        return self.hit("too long: " + ", ".join(over)) if over else self.passed()
