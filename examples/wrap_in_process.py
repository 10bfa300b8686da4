"""calguard in-process: ``guard.wrap`` an OpenAI client; no proxy to run.

    UPSTREAM_URL=http://127.0.0.1:8000/v1 python examples/wrap_in_process.py

UPSTREAM_URL: any OpenAI-compatible endpoint with logprobs (vLLM, llama.cpp's server, OpenAI
with its key in OPENAI_API_KEY).
"""

import os

from openai import OpenAI

import guard

QUESTION = """Question: Which gas do plants take in for photosynthesis?
Options:
A. Oxygen
B. Nitrogen
C. Carbon dioxide
D. Helium
Answer:"""

with OpenAI(
    base_url=os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8000/v1"),
    api_key=os.environ.get("OPENAI_API_KEY", "x"),
) as upstream:
    client = guard.wrap(upstream, store=os.environ.get("CALGUARD_STORE", "sqlite:///calguard.db"))
    r = client.chat.completions.create(
        model=os.environ.get("MODEL", "gpt-4o-mini"),
        messages=[{"role": "user", "content": QUESTION}],
        guard={"calibration": "cyclic"},  # type: ignore[call-arg]
    )
print("answer:", r.choices[0].message.content, (r.model_extra or {})["guard"]["probs"])
