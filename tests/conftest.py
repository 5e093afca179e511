import sys
from pathlib import Path

# tests/ holds small helpers (nbtools) that the test modules import.
sys.path.insert(0, str(Path(__file__).resolve().parent))
