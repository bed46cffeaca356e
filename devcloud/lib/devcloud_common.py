"""Constants, logging, Failure and sha: what every devcloud module shares.

The modules beside it are named ``devcloud_*`` on purpose: gunicorn and uWSGI put this
directory first on the services' sys.path, so a generic name (``config``, ``procs``) could
shadow a module of the cloud's venv.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

LIB = Path(__file__).resolve().parent  # devcloud/lib
DEVCLOUD = LIB.parent  # devcloud/
REPO = DEVCLOUD.parent
NOVA_HOST = 'devcloud'  # nova [DEFAULT]host == the OVN fake chassis name
REGION = 'RegionOne'
# epmd is shared between clouds on one machine: a second cloud (its own DEVCLOUD_STATE and
# ports) needs its own Erlang node name, or its RabbitMQ refuses to start
_RABBIT_PORT = os.environ.get('DEVCLOUD_RABBIT_PORT', '5683')
RABBIT_NODE = os.environ.get('DEVCLOUD_RABBIT_NODE') or (
    'devcloud@localhost' if _RABBIT_PORT == '5683' else f'devcloud{_RABBIT_PORT}@localhost')
APT_PACKAGES = ('rabbitmq-server', 'ovn-central', 'mariadb-server',
                'python3-venv', 'python3-dev', 'build-essential',
                # cinder inspects every image it writes to a volume with qemu-img
                'qemu-utils')
DATABASES = ('keystone', 'glance', 'nova_api', 'nova_cell0', 'nova_cell1', 'placement',
             'neutron', 'cinder')
DEFAULT_PORTS = {  # DEVCLOUD_<NAME>_PORT
    'keystone': 5000, 'glance': 9292, 'nova': 8774, 'placement': 8778, 'neutron': 9696,
    'cinder': 8776,
    'rabbit': 5683, 'rabbit_dist': 25683, 'epmd': 4369,
}
# Patience: CI machines are slow and noisy. Every wait is bounded but generous.
WAIT = int(os.environ.get('DEVCLOUD_WAIT', '300'))  # seconds per readiness wait
SYNC_WAIT = int(os.environ.get('DEVCLOUD_SYNC_WAIT', '900'))  # per schema sync
TAIL = 40

# service name -> (port key or None, log files: primary first)
SERVICES = {
    'epmd': ('epmd', ['epmd.stdout']),
    'rabbitmq': ('rabbit', [f'rabbit/{RABBIT_NODE}.log', 'rabbitmq.stdout']),
    'mysqld': (None, ['mysqld.log', 'mysqld.stdout']),
    'ovsdb-nb': (None, ['ovn/ovsdb-nb.log', 'ovsdb-nb.stdout']),
    'ovsdb-sb': (None, ['ovn/ovsdb-sb.log', 'ovsdb-sb.stdout']),
    'ovn-northd': (None, ['ovn/ovn-northd.log', 'ovn-northd.stdout']),
    'fake-ovn-controller': (None, ['fake-ovn-controller.stdout']),
    'keystone': ('keystone', ['keystone.log', 'keystone.stdout']),
    'placement-api': ('placement', ['placement-api.log', 'placement-api.stdout']),
    'glance-api': ('glance', ['glance-api.log', 'glance-api.stdout']),
    'neutron-api': ('neutron', ['neutron-api.log', 'neutron-api.stdout']),
    'nova-api': ('nova', ['nova-api.log', 'nova-api.stdout']),
    'nova-conductor': (None, ['nova-conductor.log', 'nova-conductor.stdout']),
    'nova-scheduler': (None, ['nova-scheduler.log', 'nova-scheduler.stdout']),
    'nova-compute': (None, ['nova-compute.log', 'nova-compute.stdout']),
    'cinder-api': ('cinder', ['cinder-api.log', 'cinder-api.stdout']),
    'cinder-scheduler': (None, ['cinder-scheduler.log', 'cinder-scheduler.stdout']),
    'cinder-volume': (None, ['cinder-volume.log', 'cinder-volume.stdout']),
}
LOW_PRIORITY_AT_START = ('glance-api', 'neutron-api', 'nova-api', 'nova-scheduler',
                         'cinder-api', 'cinder-scheduler', 'cinder-volume')
STARTUP_NICE = int(os.environ.get('DEVCLOUD_STARTUP_NICE', '10'))
OPENSTACK_SERVICES = ('cinder-volume', 'cinder-scheduler', 'cinder-api',
                      'nova-compute', 'nova-scheduler', 'nova-conductor', 'nova-api',
                      'neutron-api', 'glance-api', 'placement-api', 'keystone')
INFRA_SERVICES = ('fake-ovn-controller', 'ovn-northd', 'ovsdb-sb', 'ovsdb-nb', 'rabbitmq',
                  'mysqld', 'epmd')

T0 = time.monotonic()


def log(msg):
    print(f'[devcloud {time.monotonic() - T0:6.1f}s] {msg}', flush=True)


class Failure(Exception):
    """A step failed; ``service`` names the culprit whose logs are shown."""

    def __init__(self, msg, service=None, logs=None):
        super().__init__(msg)
        self.service = service
        self.logs = logs


def sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b'\0')
    return h.hexdigest()
