"""nova-compute with devcloud's emulated hypervisor.

nova loads ``compute_driver`` strictly as ``nova.virt.<compute_driver>`` (see
``nova.virt.driver.load_compute_driver``), so this launcher adds devcloud/lib to the
``nova.virt`` package path; ``compute_driver = devcloud_fake_driver.ConsoleKeysFakeDriver``
then resolves to devcloud/lib/devcloud_fake_driver.py without touching the venv's nova.
Run with the cloud venv's python, with the same arguments as nova-compute.
"""

import os
import sys

import nova.virt
from nova.cmd.compute import main  # monkey-patches first, exactly like the nova-compute script

nova.virt.__path__.append(os.path.dirname(os.path.abspath(__file__)))

if __name__ == '__main__':
    sys.argv[0] = 'nova-compute'  # oslo.config/oslo.log name the log file after it
    sys.exit(main())
