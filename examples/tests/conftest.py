"""The examples' tests import their helpers from ``example_runner`` (next to this file)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
