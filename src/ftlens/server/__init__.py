"""`ftlens serve`: the OpenAI fine-tuning API over the local engine (FastAPI, SQLite)."""
