"""Test aids, named as such: a fake OpenAI-compatible upstream (a seeded, simulated biased LLM or
a replay of recorded distributions), a simulated MCQ model, and serving an ASGI app on 127.0.0.1
in a thread. Used by the tests, the demo and the benchmarks; never a real model."""
