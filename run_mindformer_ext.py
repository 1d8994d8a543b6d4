#!/usr/bin/env python
"""Run a MindFormers YAML with plug-in models: a superset of MindFormers' run_mindformer.py. See --help."""

import sys

from mf_ext.launcher import main

if __name__ == "__main__":
    sys.exit(main())
