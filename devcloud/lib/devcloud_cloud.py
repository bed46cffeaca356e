"""The Cloud: up, down and status, composed of the start steps in the modules beside it."""

from __future__ import annotations

import contextlib
import json
import shutil
from typing import TYPE_CHECKING

from devcloud_common import (
    INFRA_SERVICES,
    LOW_PRIORITY_AT_START,
    NOVA_HOST,
    OPENSTACK_SERVICES,
    SERVICES,
    log,
)
from devcloud_config import ConfigFiles
from devcloud_defaults import CloudDefaults
from devcloud_infra import Infra
from devcloud_install import HostSetup
from devcloud_procs import Procs, group_members, request, tcp_answers, unix_answers
from devcloud_schemas import Schemas
from devcloud_services import OpenStackServices

if TYPE_CHECKING:  # devcloud.py is the entry script: never imported at run time
    from devcloud import Settings


class Cloud(HostSetup, ConfigFiles, Infra, Schemas, OpenStackServices, CloudDefaults):
    """One base class per phase of ``up``; they share self.s (Settings), self.procs and
    self.env, and call each other's steps through self."""

    def __init__(self, s: Settings):
        self.s = s
        self.procs = Procs(s)
        self.env = self.base_env()

    def base_env(self):
        s = self.s
        return {
            'PATH': f'{s.venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'HOME': str(s.data / 'home'),
            'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8',
            'PYTHONWARNINGS': 'ignore::DeprecationWarning',
            'OVN_NB_DB': f'unix:{s.run}/ovnnb_db.sock',
            'OVN_SB_DB': f'unix:{s.run}/ovnsb_db.sock',
        }

    # ------------------------------------------------------------------ up
    def up(self):
        s = self.s
        for d in (s.state, s.etc, s.data, s.logs, s.run):
            d.mkdir(parents=True, exist_ok=True)
        log(f'state {s.state}')
        self.check_ports()
        self.apt()
        req_hash = self.venv()
        self.write_configs()
        self.start_infra()
        syncs = self.start_schema_syncs(req_hash)
        try:
            self.start_openstack(syncs, req_hash)
        finally:
            for name in LOW_PRIORITY_AT_START:
                self.procs.renice(name, 0)

    # ------------------------------------------------------------------ down
    def down(self, purge=False):
        s = self.s
        stopped = self.procs.stop(OPENSTACK_SERVICES)
        stopped += self.procs.stop(INFRA_SERVICES)
        for pat in ('*.ctl', '*.sock', 'rabbitmq-beam.pid', 'mysqld-self.pid'):
            for f in s.run.glob(pat):
                f.unlink()
        log('stopped: %s' % (', '.join(stopped) if stopped else 'nothing was running'))
        if purge:
            for d in (s.data, s.logs, s.etc, s.run):
                shutil.rmtree(d, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (s.state / 'clouds.yaml').unlink()
            log(f'purged data, logs, configs (kept the venv {s.venv})')

    # ------------------------------------------------------------------ status
    def status(self):
        s = self.s
        tok = None
        if self.procs.pid('keystone'):
            tok = self.token()
        rows, ok = [], True
        checks = {
            'keystone': s.auth_url, 'placement-api': s.url('placement') + '/',
            'glance-api': s.url('glance') + '/versions', 'neutron-api': s.url('neutron') + '/',
            'nova-api': s.url('nova') + '/', 'cinder-api': s.url('cinder') + '/',
        }
        for name, (pkey, _logs) in SERVICES.items():
            pid = self.procs.pid(name)
            port = s.ports[pkey] if pkey else None
            answer = ''
            if name in checks:
                code = request('GET', checks[name], timeout=5)[0]
                answer = f'HTTP {code}' if code else 'no answer'
                ok &= bool(code)
            elif name == 'rabbitmq':
                up = tcp_answers(port)
                answer = 'amqp port open' if up else 'no answer'
                ok &= up
            elif name == 'mysqld':
                up = unix_answers(s.run / 'mysqld.sock')
                answer = 'socket answers' if up else 'no answer'
                ok &= up
            elif name in ('ovsdb-nb', 'ovsdb-sb'):
                up = unix_answers(s.run / (f'ovn{name[-2:]}_db.sock'))
                answer = 'socket answers' if up else 'no answer'
                ok &= up
            elif name == 'epmd':
                if not pid:  # optional: a shared epmd is fine
                    answer = 'shared/external' if tcp_answers(port) else 'no answer'
                    rows.append((name, '-', 'n/a', port, answer))
                    continue
            elif name == 'nova-compute' and tok:
                code, _, body = request('GET', s.url('nova') + '/v2.1/os-services?binary='
                                     'nova-compute', headers={'X-Auth-Token': tok}, timeout=10)
                if code == 200:
                    st = [x['state'] for x in json.loads(body)['services']
                          if x['host'] == NOVA_HOST]
                    answer = 'service %s' % (st[0] if st else 'not registered')
                    ok &= st == ['up']
            ok &= bool(pid)
            rows.append((name, pid or '-', 'alive' if pid else 'DEAD', port or '', answer))
        if tok is None:
            ok = False
        print(f'devcloud state {s.state}')
        fmt = '{:<20} {:>8}  {:<6} {:>6}  {}'
        print(fmt.format('SERVICE', 'PID', 'STATE', 'PORT', 'CHECK'))
        for r in rows:
            print(fmt.format(*r))
        pss = rss = nproc = 0
        for name in SERVICES:
            pid = self.procs.pid(name)
            for member in group_members(pid) if pid else ():
                with contextlib.suppress(OSError), open(f'/proc/{member}/smaps_rollup') as f:
                    nproc += 1
                    for line in f:
                        if line.startswith('Pss:'):
                            pss += int(line.split()[1])
                        elif line.startswith('Rss:'):
                            rss += int(line.split()[1])
        print(f'memory of the {nproc} devcloud processes: PSS {pss / 1024:.0f} MiB, '
              f'RSS {rss / 1024:.0f} MiB')
        print(f'keystone admin token: {"ok" if tok else "FAILED"}')
        print(f'overall: {"UP" if ok else "NOT UP"}')
        return 0 if ok else 1
