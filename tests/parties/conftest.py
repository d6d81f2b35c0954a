import pathlib
import sys

# make `party_scenarios` and `party_fuzzing` importable from test modules (import-mode=importlib)
sys.path.insert(0, str(pathlib.Path(__file__).parent))
