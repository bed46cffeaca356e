"""Run every benchmark: python -m bench (results in bench/results/*.json)."""

import importlib
import pkgutil

import bench

for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
    if mod.endswith("_bench"):
        print(f"== {mod}")
        importlib.import_module(f"bench.{mod}").main([])
