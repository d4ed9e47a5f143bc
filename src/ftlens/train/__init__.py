"""Local fine-tuning engine (transformers + peft). Heavy imports happen inside the functions
that need them, so importing this package is cheap."""

import warnings

# Two known, harmless library warnings that would otherwise reach every user: peft calls a
# transformers API deprecated in v5, and looks for a config.json next to a GGUF file.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                        category=FutureWarning)
warnings.filterwarnings("ignore", message="Could not find a config file in",
                        category=UserWarning)
