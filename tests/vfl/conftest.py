import pathlib
import sys

# make `sbt_reference` importable from test modules (import-mode=importlib)
sys.path.insert(0, str(pathlib.Path(__file__).parent))
