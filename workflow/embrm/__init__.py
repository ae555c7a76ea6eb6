"""embrm: embedding-based reward-model research, from synthetic worlds to Best-of-N figures."""

__version__ = "0.1.0"
