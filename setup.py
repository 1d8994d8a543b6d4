"""Build glue that pyproject.toml cannot express (all metadata lives there).

The built-in family folders (``research/<family>/``: code, YAMLs, demo weights, tokenizer files) ship inside the
wheel as the package ``mf_ext_families`` -- never as a top-level ``research`` package, which would shadow the
``research.<model>`` imports of a MindFormers checkout. ``mf_ext.registry`` finds them there in an installed wheel and
in ``research/`` in a source tree or an editable install. Family folders are data to the registry (it imports them
itself), so the whole tree is package data of one package: a new family folder ships without editing this file.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["mf_ext", "mf_ext.*"]), "mf_ext_families"],
    package_dir={"mf_ext_families": "research"},
    package_data={"mf_ext_families": ["**/*"]},
    exclude_package_data={"mf_ext_families": ["**/__pycache__/*", "**/*.pyc"]},
)
