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
from typing import Any

import numpy as np

from calibrators.label_prior import (
    CONTENT_FREE,
    apply_prior,
    probe_prior,
    probe_prompts,
)
from calibrators.label_scores import surface_forms
from calibrators.word_pool import WordPool
from guard.calibrations import CALIBRATIONS
from guard.errors import InvalidRequestError
from guard.request import ClassifyOptions
from guard.store import State
from guard.store.threads import in_store_thread
from guard.tasks.distribution import check_forms
from guard.tasks.job import Job, Outcome
from guard.tasks.traffic import counted

DOMAIN_REFRESH = 50


def classify_key(
    upstream_model: str, labels: list[str], body: dict[str, Any], text: str, input_text: str | None
) -> str:
    system = [m.get("content") for m in body["messages"] if m.get("role") == "system"]
    skeleton = text.replace(input_text, "{input}") if input_text else ""
    fp = hashlib.sha1(json.dumps([system, skeleton]).encode()).hexdigest()[:12]
    # '/' joins the labels and '|' the parts: either inside a label is escaped, so that
    # ["yes/no", "maybe"] and ["yes", "no/maybe"] are two keys (labels without '/', '|' or '\\'
    # keep the keys they had)
    joined = "/".join(
        w.replace("\\", "\\\\").replace("/", "\\/").replace("|", "\\|") for w in labels
    )
    return f"{upstream_model}|classify|{joined}|{fp}"


async def run(job: Job) -> Outcome:
    opts = job.opts
    assert isinstance(opts, ClassifyOptions)
    store, body, text = job.store, job.body, job.text
    method = opts.calibration or job.route.classify
    labels = opts.labels
    if not labels:
        raise InvalidRequestError(
            "task 'classify' needs guard.labels (the label words)", param="guard.labels"
        )
    if len(set(labels)) != len(labels):
        raise InvalidRequestError("guard.labels must be distinct words", param="guard.labels")
    if method in ("contextual", "domain") and not (opts.input and opts.input in text):
        raise InvalidRequestError(
            f"calibration {method!r} needs guard.input: the part of the last user message "
            "that is the test input (the probes replace it)",
            param="guard.input",
        )
    if method == "domain" and not (opts.input or "").split():
        raise InvalidRequestError(
            "calibration 'domain' draws its probes from the words of guard.input, which has none",
            param="guard.input",
        )
    forms = {w: surface_forms(w) if w.strip() else () for w in labels}
    check_forms(forms, "guard.labels")
    key = job.client_key(opts.key) or classify_key(
        job.upstream_model, labels, body, text, opts.input
    )
    p, template = await job.distribution(text, forms)
    raw = np.log(np.maximum(p, 1e-12))
    state = await in_store_thread(store.load, key) or {}
    log_prior: np.ndarray | None = None

    if method in ("contextual", "domain"):
        assert opts.input is not None
        cached = (state.get(method) or {}).get("log_prior")
        if cached is not None and len(cached) != len(labels):
            raise InvalidRequestError(
                f"calibration key {key!r} holds {len(cached)} labels, not {len(labels)}: use "
                "another guard.key",
                param="guard.key",
            )
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
            answers = await asyncio.gather(*(job.distribution(pr, forms) for pr in probes))
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
            return counted(st, method, job.calls), None

        await in_store_thread(store.update, key, save)
        calibrated = apply_prior(raw, log_prior)
    elif CALIBRATIONS["classify"].get(method) is not None:
        kind = CALIBRATIONS["classify"][method]  # an online label calibrator

        def learn(st: State | None) -> tuple[State, tuple[np.ndarray, np.ndarray]]:
            st = dict(st or {})
            saved = st.get(method)
            cal = kind.from_dict(saved) if saved else kind(len(labels))
            if saved and len(np.asarray(cal.log_prior)) != len(labels):
                raise InvalidRequestError(
                    f"calibration key {key!r} holds {len(cal.log_prior)} labels, not "
                    f"{len(labels)}: use another guard.key",
                    param="guard.key",
                )
            cal.update(raw)  # this input is part of the batch (the measured cold-start choice)
            st[method] = cal.to_dict()
            return counted(st, method, job.calls), (cal.calibrate(raw), cal.log_prior)

        calibrated, log_prior = await in_store_thread(store.update, key, learn)
    else:
        calibrated = raw - np.log(np.exp(raw).sum())

    probs = np.exp(np.asarray(calibrated).reshape(-1))
    probs = probs / probs.sum()
    index = int(np.argmax(probs))
    evidence = {
        "task": "classify",
        "calibration": method,
        "answer": labels[index],
        "index": index,
        "probs": [round(float(x), 6) for x in probs],
        "raw_probs": [round(float(x), 6) for x in p],
        "prior": None if log_prior is None else [round(float(x), 6) for x in np.exp(log_prior)],
        "upstream_calls": job.calls,
        "flags": [],
        "key": key,
        "answers_from": "samples" if job.sampled else "logprobs",
    }
    return Outcome(labels[index], evidence, template, job.usage)
