#!/usr/bin/env python3
"""devcloud: a real, throwaway OpenStack on 127.0.0.1 (``devcloud/up``, ``down``, ``status``).

Keystone, Glance (file store), Placement, Nova (api, conductor, scheduler, compute with an
emulated hypervisor), Neutron (ML2/OVN with Debian's ovn-central), RabbitMQ and MariaDB, all
listening on 127.0.0.1 or unix sockets, every API behind keystonemiddleware.

Stdlib only: it runs with the system python3 before the cloud's own virtualenv exists.
State (default ``<repo>/.devcloud``, env DEVCLOUD_STATE): venv/ etc/ data/ logs/ run/
clouds.yaml. Every process is started in its own session; run/<name>.pid records its pid and
start time, and ``down`` signals only those process groups.

This file is the entry point (Settings and the command line); the steps live beside it:
devcloud_procs.py (process supervisor), devcloud_install.py (ports, apt, venv),
devcloud_config.py + templates/ (config files), devcloud_infra.py (RabbitMQ, MariaDB, OVN),
devcloud_schemas.py (schema syncs), devcloud_services.py (OpenStack services, registration),
devcloud_cloud.py (up, down, status).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path

from devcloud_cloud import Cloud
from devcloud_common import DEFAULT_PORTS, REPO, T0, Failure, log
from devcloud_procs import show_failure


# ----------------------------------------------------------------------------- settings
class Settings:
    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.state = Path(env.get('DEVCLOUD_STATE') or REPO / '.devcloud').absolute()
        self.ports = {k: int(env.get(f'DEVCLOUD_{k.upper()}_PORT', v))
                      for k, v in DEFAULT_PORTS.items()}
        self.admin_pw = env.get('DEVCLOUD_ADMIN_PASSWORD', 'secret')
        self.service_pw = env.get('DEVCLOUD_SERVICE_PASSWORD', 'service-secret')
        self.demo_pw = env.get('DEVCLOUD_DEMO_PASSWORD', 'demo-secret')
        self.python = env.get('DEVCLOUD_PYTHON', 'python3')  # interpreter for the cloud venv
        # Keystone's worker processes. One keeps its in-process cache coherent; more
        # serve concurrent requests on more cores but run without that cache (a grant
        # made in one process would stay unseen in another until its cache expired).
        self.keystone_workers = int(env.get('DEVCLOUD_KEYSTONE_WORKERS', '1'))
        self.venv = self.state / 'venv'
        self.etc = self.state / 'etc'
        self.data = self.state / 'data'
        self.logs = self.state / 'logs'
        self.run = self.state / 'run'

    def as_dict(self):
        return {'ports': self.ports, 'admin_pw': self.admin_pw, 'service_pw': self.service_pw,
                'demo_pw': self.demo_pw, 'python': self.python}

    @classmethod
    def saved(cls):
        """The settings the running cloud was started with (for status/down)."""
        s = cls()
        f = s.etc / 'devcloud.json'
        if f.exists():
            d = json.loads(f.read_text())
            s.ports.update(d.get('ports', {}))
            s.admin_pw = d.get('admin_pw', s.admin_pw)
            s.service_pw = d.get('service_pw', s.service_pw)
            s.demo_pw = d.get('demo_pw', s.demo_pw)
        return s

    def url(self, name):
        return f'http://127.0.0.1:{self.ports[name]}'

    @property
    def auth_url(self):
        return self.url('keystone') + '/v3'

    def dburl(self, db):
        return (f'mysql+pymysql://root@localhost/{db}?unix_socket={self.run}/mysqld.sock'
                '&charset=utf8mb4')


@contextlib.contextmanager
def state_lock(s: Settings):
    """One up/down at a time per state folder (make targets and people run them at once)."""
    s.state.mkdir(parents=True, exist_ok=True)
    with open(s.state / '.lock', 'a+') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            log(f'waiting for another devcloud up/down on {s.state} ({f.read().strip()})')
            fcntl.flock(f, fcntl.LOCK_EX)
            log('got the devcloud lock')
        f.seek(0)
        f.truncate()
        f.write(f'pid {os.getpid()}: {" ".join(sys.argv[1:])}\n')
        f.flush()
        yield


def main(argv=None):
    ap = argparse.ArgumentParser(prog='devcloud', description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    sub.add_parser('up', help='install (first time) and start the cloud; idempotent')
    d = sub.add_parser('down', help='stop what up started')
    d.add_argument('--purge', action='store_true', help='also delete data, logs and configs')
    sub.add_parser('status', help='show services; exit 0 only if all are up')
    args = ap.parse_args(argv)
    if os.geteuid() != 0 and args.cmd == 'up':
        print('devcloud: up must run as root (apt, services run as root)', file=sys.stderr)
        return 2
    s = Settings() if args.cmd == 'up' else Settings.saved()
    cloud = Cloud(s)
    try:
        if args.cmd == 'up':
            with state_lock(s):
                cloud.up()
            log('up done in %.1fs' % (time.monotonic() - T0))
            return 0
        if args.cmd == 'down':
            if not s.state.exists():
                log(f'nothing to do: {s.state} does not exist')
                return 0
            with state_lock(s):
                cloud.down(args.purge)
            log('down done in %.1fs' % (time.monotonic() - T0))
            return 0
        return cloud.status()
    except Failure as e:
        show_failure(s, e)
        return 1
    except KeyboardInterrupt:
        print('\ndevcloud: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
