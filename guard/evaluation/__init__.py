"""Offline evaluation of calibrators on recorded LLM outputs (no model, no network)."""
