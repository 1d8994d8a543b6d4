"""Test-wide settings. ``tests`` is a package (``from tests.hf_fixtures import ...``); pyproject's
``[tool.pytest.ini_options] pythonpath = ["."]`` puts this checkout first on ``sys.path``, so the tests exercise this
checkout's ``mf_ext`` whatever an editable install points at (tests/test_package.py checks it)."""

import os

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
