"""A calibrated classification request: read the label-word distribution, divide out the
model's label prior, answer with a label word.

- ``batch`` / ``prior-match``: the key's online calibrator (in the store) learns from this input
  (included, with a pseudo-count: the measured cold-start choice) and calibrates it.
- ``contextual``: the model's answers on content-free probes ("N/A", "", "[MASK]") put where the
  input was (needs ``guard.input``); asked once per key and kept.
- ``domain``: the same with ~20 strings of random words from the key's recent inputs (needs
  ``guard.input``). The probes are re-asked as the word pool grows: after 1, 2, 4, 8, ... inputs,
  then every ``DOMAIN_REFRESH``. On a key's first inputs the pool is those inputs' own words, so
  the probes carry their sentiment: domain calibration needs some traffic before it helps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibrators.label_prior import (
    CONTENT_FREE,
    BatchCalibrator,
    PriorMatcher,
    WordPool,
    apply_prior,
    probe_prior,
    probe_prompts,
)
from calibrators.label_scores import surface_forms
from guard.asking import Ask, add_usage, ask_distribution
from guard.errors import InvalidRequestError
from guard.protocol import GuardOptions
from guard.store import State, Store

CLASSIFY_CALIBRATIONS = ("batch", "prior-match", "contextual", "domain", "none")
DOMAIN_REFRESH = 50


@dataclass(frozen=True)
class ClassifyOutcome:
    label: str
    index: int
    probs: list[float]
    raw_probs: list[float]
    prior: list[float] | None
    calls: int
    method: str
    key: str
    template: dict[str, Any]
    usage: dict[str, int]


def classify_key(
    upstream_model: str, labels: list[str], body: dict[str, Any], text: str, input_text: str | None
) -> str:
    system = [m.get("content") for m in body["messages"] if m.get("role") == "system"]
    skeleton = text.replace(input_text, "{input}") if input_text else ""
    fp = hashlib.sha1(json.dumps([system, skeleton]).encode()).hexdigest()[:12]
    return f"{upstream_model}|classify|{'/'.join(labels)}|{fp}"


async def run_classify(
    *,
    ask: Ask,
    store: Store,
    body: dict[str, Any],
    msg_index: int,
    text: str,
    opts: GuardOptions,
    method: str,
    upstream_model: str,
    top_logprobs: int,
) -> ClassifyOutcome:
    labels = opts.labels
    if not labels:
        raise InvalidRequestError(
            "task 'classify' needs guard.labels (the label words)", param="guard.labels"
        )
    if method not in CLASSIFY_CALIBRATIONS:
        raise InvalidRequestError(
            f"calibration {method!r} is not one for task classify; use one of "
            f"{', '.join(CLASSIFY_CALIBRATIONS)}",
            param="guard.calibration",
        )
    if method in ("contextual", "domain") and not (opts.input and opts.input in text):
        raise InvalidRequestError(
            f"calibration {method!r} needs guard.input: the part of the last user message "
            "that is the test input (the probes replace it)",
            param="guard.input",
        )
    forms = {w: surface_forms(w) for w in labels}
    key = opts.key or classify_key(upstream_model, labels, body, text, opts.input)
    usage: dict[str, int] = {}
    p, template = await ask_distribution(ask, body, msg_index, text, forms, top_logprobs)
    add_usage(usage, template)
    raw = np.log(np.maximum(p, 1e-12))
    calls = 1
    state = await asyncio.to_thread(store.load, key) or {}
    log_prior: np.ndarray | None = None

    if method in ("contextual", "domain"):
        assert opts.input is not None
        cached = (state.get(method) or {}).get("log_prior")
        pool = WordPool.from_dict(state["pool"]) if "pool" in state else WordPool()
        seen = int(state.get("seen", 0))
        stale = method == "domain" and (seen & (seen - 1) == 0 or seen % DOMAIN_REFRESH == 0)
        if cached is None or stale:
            if method == "contextual":
                probes = probe_prompts(text, opts.input, CONTENT_FREE)
            else:
                pool.add(opts.input)
                strings = pool.probes(np.random.default_rng(seen))
                probes = probe_prompts(text, opts.input, strings)
            answers = await asyncio.gather(
                *(ask_distribution(ask, body, msg_index, pr, forms, top_logprobs) for pr in probes)
            )
            calls += len(answers)
            for _, resp in answers:
                add_usage(usage, resp)
            log_prior = probe_prior(np.log(np.maximum([a[0] for a in answers], 1e-12)))
        else:
            log_prior = np.asarray(cached)

        fitted = [float(x) for x in log_prior]

        def save(st: State | None) -> tuple[State, None]:
            st = dict(st or {})
            fresh = WordPool.from_dict(st["pool"]) if "pool" in st else WordPool()
            fresh.add(opts.input or "")  # the stored pool, plus this input once
            st.update(pool=fresh.to_dict(), seen=int(st.get("seen", 0)) + 1)
            st[method] = {"log_prior": fitted}
            return st, None

        await asyncio.to_thread(store.update, key, save)
        calibrated = apply_prior(raw, log_prior)
    elif method in ("batch", "prior-match"):

        def learn(st: State | None) -> tuple[State, tuple[np.ndarray, np.ndarray]]:
            st = dict(st or {})
            saved = st.get(method)
            cal: BatchCalibrator | PriorMatcher
            if method == "batch":
                cal = BatchCalibrator.from_dict(saved) if saved else BatchCalibrator(len(labels))
            else:
                cal = PriorMatcher.from_dict(saved) if saved else PriorMatcher(len(labels))
            cal.update(raw)  # this input is part of the batch (the measured cold-start choice)
            st[method] = cal.to_dict()
            return st, (cal.calibrate(raw), cal.log_prior)

        calibrated, log_prior = await asyncio.to_thread(store.update, key, learn)
    else:
        calibrated = raw - np.log(np.exp(raw).sum())

    probs = np.exp(np.asarray(calibrated).reshape(-1))
    probs = probs / probs.sum()
    index = int(np.argmax(probs))
    return ClassifyOutcome(
        labels[index],
        index,
        [round(float(x), 6) for x in probs],
        [round(float(x), 6) for x in p],
        None if log_prior is None else [round(float(x), 6) for x in np.exp(log_prior)],
        calls,
        method,
        key,
        template,
        usage,
    )
