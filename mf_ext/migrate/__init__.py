"""Config migration (Llama 2 -> Llama 3 / 3.1, HF config.json -> MindFormers YAML) and YAML validation.

CLI: ``mf-ext migrate`` -> :func:`mf_ext.migrate.cli.migrate_main`, ``mf-ext validate`` ->
:func:`mf_ext.migrate.cli.validate_main`. Importing this package imports nothing heavy.
"""

__all__ = ["migrate_main", "validate_main"]


def __getattr__(name):  # PEP 562: keep `import mf_ext.migrate` free of PyYAML/MindFormers until used
    if name in __all__:
        from mf_ext.migrate import cli

        return getattr(cli, name)
    raise AttributeError(f"module 'mf_ext.migrate' has no attribute {name!r}")
