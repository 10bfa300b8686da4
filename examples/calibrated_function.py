"""``@guard.calibrated`` on your own function: any model call that returns text. Here a toy
"model" that always prefers the option shown first, so the calibration has something to undo.
Runs as is: no network, no key.

    python examples/calibrated_function.py
"""

import os
import re

import guard

STORE = os.environ.get("CALGUARD_STORE", "sqlite:///calguard.db")  # the learned priors


@guard.calibrated(calibration="cyclic", store=STORE)
def ask(messages: list[dict[str, str]], **kwargs: object) -> str:
    text = messages[-1]["content"]
    options = dict(re.findall(r"^([A-D])\. (.+)$", text, flags=re.MULTILINE))
    # The "model": right when the true answer is shown first or second, else it says A.
    for letter in "AB":
        if options.get(letter) == "Carbon dioxide":
            return letter
    return "A"


QUESTION = """Question: Which gas do plants take in for photosynthesis?
Options:
A. Oxygen
B. Nitrogen
C. Carbon dioxide
D. Helium
Answer:"""

print("answer:", ask([{"role": "user", "content": QUESTION}]))
