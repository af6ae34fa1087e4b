"""harness: a plugin-based benchmark and post-training harness for studying how models generalise."""

from harness.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
