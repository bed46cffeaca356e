"""Benchmarks on the local cloud (results in bench/results/*.json).

    python -m bench --scenario identity --sizes 100,1000,10000   # phases at scale
    python -m bench --scenario mixed --sizes 100,1000            # + networks, subnets, rules
    python -m bench --scenario every-kind                        # one of each kind
    python -m bench                                              # every *_bench module
"""

import importlib
import pkgutil
import sys

import bench

SCENARIOS = {
    "identity": "scale_bench",
    "mixed": "mixed_scale",
    "local": "local_scale",
    "every-kind": "every_kind_bench",
}
# Run only when named: the every-kind run boots a server and makes a volume (about 1 min).
OPT_IN = {"scale_bench", "every_kind_bench"}

if len(sys.argv) > 2 and sys.argv[1] == "--scenario":
    module = SCENARIOS.get(sys.argv[2])
    if module is None:
        sys.exit(f"unknown scenario {sys.argv[2]!r}; known: {', '.join(SCENARIOS)}")
    importlib.import_module(f"bench.{module}").main(sys.argv[3:])
else:
    for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if mod.endswith("_bench") and mod not in OPT_IN:  # those: --scenario
            print(f"== {mod}")
            importlib.import_module(f"bench.{mod}").main([])
