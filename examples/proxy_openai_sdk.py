"""The calguard proxy with the OpenAI SDK: a multiple-choice question, calibrated by PriDe.

calguard serve --fake-upstream          # or: calguard serve --upstream URL
python examples/proxy_openai_sdk.py
"""

import os

from openai import OpenAI

QUESTION = """Question: Which gas do plants take in for photosynthesis?
Options:
A. Oxygen
B. Nitrogen
C. Carbon dioxide
D. Helium
Answer:"""

URL = os.environ.get("CALGUARD_URL", "http://127.0.0.1:8080/v1")
with OpenAI(base_url=URL, api_key="x") as client:
    r = client.chat.completions.create(
        model=os.environ.get("MODEL", "any-model"),
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"guard": {"calibration": "pride"}},
    )
evidence = (r.model_extra or {})["guard"]
print("answer:", r.choices[0].message.content)
print("upstream calls:", evidence["upstream_calls"], "probs:", evidence["probs"])
