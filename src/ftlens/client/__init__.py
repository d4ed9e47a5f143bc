"""Talking to any OpenAI-compatible API (the eval runner: async, retries, SQLite cache)."""
