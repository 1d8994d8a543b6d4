"""Test-wide settings. ``tests`` is a package (``from tests.hf_fixtures import ...``); pyproject's
``[tool.pytest.ini_options] pythonpath = ["."]`` puts this checkout first on ``sys.path``, so the tests exercise this
checkout's ``mf_ext`` whatever an editable install points at (tests/test_package.py checks it)."""

import os

import pytest

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's addopts): one worker per core, at most 4 -- each worker holds its own MindSpore,
    MindFormers and torch (about 2 GB), and the suite's files are too few for more to pay. ``-n 0`` runs serially."""
    return max(1, min(os.cpu_count() or 1, 4))
