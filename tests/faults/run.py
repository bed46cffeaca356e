"""`python -m tests.faults.run SEED RATE KINDS STATS.json -- <bootstrap arguments>`

Runs the real CLI (`bootstrap.cli.main`) in this process with a `FaultInjector` mounted
on the session of every `Cloud` it connects, so the exit code is the tool's own.
"""

from __future__ import annotations

import sys

from bootstrap import cli
from bootstrap.cloud import Cloud
from tests.faults.injector import FaultInjector, install, write_stats_at_exit


def main(argv: list[str]) -> int:
    seed, rate, kinds, stats = argv[:4]
    assert argv[4] == "--"
    injector = FaultInjector(int(seed), float(rate), tuple(kinds.split(",")))
    write_stats_at_exit(injector, stats)
    connect = Cloud.connect.__func__

    def faulty_connect(cls, *args, **kwargs):
        cloud = connect(cls, *args, **kwargs)
        install(cloud.session, injector)
        return cloud

    Cloud.connect = classmethod(faulty_connect)  # this process only: the test harness
    return cli.main(argv[5:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
