"""Make the shared harness (nn_harness.py, next to this file) importable by every test here,
whatever pytest import mode is in use."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
