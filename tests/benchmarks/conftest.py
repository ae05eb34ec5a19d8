"""The benchmark suite's own logic (benchmarks/suite), tested on small fake inputs."""
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
