"""The calguard proxy with the LiteLLM SDK as a client (``openai/`` = any OpenAI-compatible
server): the ``guard`` object rides in ``extra_body``.

    calguard serve --fake-upstream
    python examples/proxy_litellm_sdk.py
"""

import os

# LiteLLM's model cost map from the package, not fetched at import (offline: a wait and warnings)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

QUESTION = """Question: What is the boiling point of water at sea level?
Options:
A. 50 degrees Celsius
B. 100 degrees Celsius
C. 150 degrees Celsius
D. 200 degrees Celsius
Answer:"""

r = litellm.completion(
    model="openai/" + os.environ.get("MODEL", "any-model"),
    api_base=os.environ.get("CALGUARD_URL", "http://127.0.0.1:8080/v1"),
    api_key="x",
    messages=[{"role": "user", "content": QUESTION}],
    extra_body={"guard": {"calibration": "cyclic"}},
)
print("answer:", r.choices[0].message.content)
