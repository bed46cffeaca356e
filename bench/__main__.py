"""Benchmarks on the local cloud (results in bench/results/*.json).

    python -m bench --scenario identity --sizes 100,1000,10000   # phases at scale
    python -m bench                                              # every *_bench module
"""

import importlib
import pkgutil
import sys

import bench

SCENARIOS = {"identity": "scale_bench", "local": "local_scale"}

if len(sys.argv) > 2 and sys.argv[1] == "--scenario":
    module = SCENARIOS.get(sys.argv[2])
    if module is None:
        sys.exit(f"unknown scenario {sys.argv[2]!r}; known: {', '.join(SCENARIOS)}")
    importlib.import_module(f"bench.{module}").main(sys.argv[3:])
else:
    for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if mod.endswith("_bench") and mod != "scale_bench":  # scenarios: --scenario
            print(f"== {mod}")
            importlib.import_module(f"bench.{mod}").main([])
