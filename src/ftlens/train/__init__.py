"""Local fine-tuning engine (transformers + peft). Heavy imports happen inside the functions
that need them, so importing this package is cheap."""
