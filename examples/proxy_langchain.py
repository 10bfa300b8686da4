"""The calguard proxy under LangChain's ``ChatOpenAI``: calibration set once on the model.

calguard serve --fake-upstream
python examples/proxy_langchain.py
"""

import os

from langchain_openai import ChatOpenAI

QUESTION = """Question: Which planet is known as the Red Planet?
Options:
A. Venus
B. Mars
C. Jupiter
D. Saturn
Answer:"""

llm = ChatOpenAI(
    model=os.environ.get("MODEL", "any-model"),
    base_url=os.environ.get("CALGUARD_URL", "http://127.0.0.1:8080/v1"),
    api_key="x",  # type: ignore[arg-type]
    extra_body={"guard": {"calibration": "adaptive"}},
)
print("answer:", llm.invoke(QUESTION).content)
