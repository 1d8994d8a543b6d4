import os
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))  # for `from hf_fixtures import ...` from any test sub-folder
sys.path.insert(0, str(REPO_ROOT))  # test this checkout's mf_ext, whatever an editable install points at

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
