"""bpo: a notebook-first reproduction of Bootstrapped Preference Optimization for multimodal LLMs."""

__version__ = "0.1.0"
