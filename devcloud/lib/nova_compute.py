"""nova-compute with devcloud's emulated hypervisor.

nova loads ``compute_driver`` strictly as ``nova.virt.<compute_driver>`` (see
``nova.virt.driver.load_compute_driver``), so this launcher adds devcloud/lib to the
``nova.virt`` package path; ``compute_driver = devcloud_fake_driver.ConsoleKeysFakeDriver``
then resolves to devcloud/lib/devcloud_fake_driver.py without touching the venv's nova.
(The log file name comes from ``[DEFAULT] log_file`` in etc/nova/nova-compute.conf.)
Run with the cloud venv's python, with the same arguments as nova-compute.
"""

import os
import sys

import nova.virt
from nova.cmd.compute import main  # monkey-patches first, exactly like the nova-compute script
from nova.servicegroup import api as servicegroup_api

nova.virt.__path__.append(os.path.dirname(os.path.abspath(__file__)))
# The first heartbeat is written 5 s after the service joined its group (a thundering-herd
# guard for big clouds); devcloud/up waits for that heartbeat, so write it right away.
servicegroup_api.INITIAL_REPORTING_DELAY = 0

if __name__ == '__main__':
    sys.argv[0] = 'nova-compute'
    sys.exit(main())
