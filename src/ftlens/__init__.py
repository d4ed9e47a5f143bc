"""ftlens: did my fine-tune work, and can it ship?"""

__version__ = "0.1.0"
