"""mf-ext: bring a model family into MindFormers without forking it.

Importing this package is cheap: MindSpore, MindFormers and torch are imported only when a function that needs
them is called.
"""

__version__ = "0.1.0"

__all__ = ["load_model", "load_tokenizer", "logits", "generate", "__version__"]


def __getattr__(name):  # PEP 562: lazy public API, keeps `import mf_ext` free of heavy imports
    if name in ("load_model", "load_tokenizer"):
        from mf_ext import api

        return getattr(api, name)
    if name in ("logits", "generate"):
        from mf_ext import generation

        return getattr(generation, name)
    raise AttributeError(f"module 'mf_ext' has no attribute {name!r}")
