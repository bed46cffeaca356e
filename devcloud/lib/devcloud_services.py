"""OpenStack services: their command lines, start order, readiness waits, keystone
registration (lib/register.py)."""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import time

from devcloud_common import (
    LIB,
    LOW_PRIORITY_AT_START,
    NOVA_HOST,
    REGION,
    SERVICES,
    STARTUP_NICE,
    WAIT,
    Failure,
    log,
    sha,
)
from devcloud_procs import request, run


class OpenStackServices:
    """Start steps of keystone, placement, glance, neutron and nova (mixed into Cloud)."""

    # ------------------------------------------------------------------ waits
    def wait(self, what, cond, service, timeout=WAIT, interval=0.25, logs=None):
        """Poll cond() until true; fail naming the service if it dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            r = cond()
            if r:
                return r
            if service in SERVICES and not self.procs.pid(service):
                raise Failure(f'{service} died while waiting for {what}', service, logs)
            if time.monotonic() > deadline:
                raise Failure(f'timeout ({timeout}s) waiting for {what}', service, logs)
            time.sleep(interval)

    def wait_http(self, service, url):
        self.wait(f'{service} to answer on {url}',
                  lambda: request('GET', url, timeout=5)[0] is not None, service)

    def token(self):
        body = {'auth': {'identity': {'methods': ['password'], 'password': {'user': {
            'name': 'admin', 'domain': {'id': 'default'}, 'password': self.s.admin_pw}}},
            'scope': {'project': {'name': 'admin', 'domain': {'id': 'default'}}}}}
        code, hdrs, _ = request('POST', self.s.auth_url + '/auth/tokens', body, timeout=30)
        return hdrs.get('X-Subject-Token') if code == 201 else None

    # ------------------------------------------------------------------ OpenStack services
    def service_specs(self):
        s, E, V = self.s, self.s.etc, self.s.venv
        env = self.env
        gunicorn = [str(V / 'bin/gunicorn'), '--pythonpath', str(LIB), '-w', '1',
                    '--threads', '4', '-k', 'gthread', '--timeout', '120',
                    '--graceful-timeout', '2', '--no-control-socket']
        nova_conf = ['--config-file', str(E / 'nova/nova.conf')]
        cinder_conf = ['--config-file', str(E / 'cinder/cinder.conf')]
        # cinder-volume imports its volume_driver (devcloud_cinder_driver) by module name
        cinder_env = dict(env, PYTHONPATH=str(LIB))
        cinder_fps = [E / 'cinder/cinder.conf', LIB / 'devcloud_cinder_driver.py']
        vfp = [V / '.devcloud-installed']

        def wsgi(name, port, app, cfg_env, fps, workers=1):
            cmd = [*gunicorn, '-b', f'127.0.0.1:{s.ports[port]}', '--name', name,
                   'devcloud_wsgi:application']
            cmd[cmd.index('-w') + 1] = str(workers)
            return (cmd, dict(env, DEVCLOUD_WSGI_APP=app, **cfg_env), [*fps, *vfp])
        return {  # name: (schema it needs, (cmd, env, fingerprint files))
            'nova-conductor': ('nova', ([str(V / 'bin/nova-conductor'), *nova_conf], env,
                                        [E / 'nova/nova.conf', *vfp])),
            'nova-scheduler': ('nova', ([str(V / 'bin/nova-scheduler'), *nova_conf], env,
                                        [E / 'nova/nova.conf', *vfp])),
            'keystone': ('keystone', wsgi(
                'keystone', 'keystone', 'keystone.wsgi.api',
                {'OS_KEYSTONE_CONFIG_FILES': str(E / 'keystone/keystone.conf')},
                [E / 'keystone/keystone.conf'], workers=s.keystone_workers)),
            'placement-api': ('placement', wsgi(
                'placement-api', 'placement', 'placement.wsgi.api',
                {'OS_PLACEMENT_CONFIG_DIR': str(E / 'placement')},
                [E / 'placement/placement.conf'])),
            # nova's WSGI app loads its paste pipeline from the FIRST of OS_NOVA_CONFIG_FILES
            'nova-api': ('nova', wsgi(
                'nova-api', 'nova', 'nova.wsgi.osapi_compute',
                {'OS_NOVA_CONFIG_DIR': str(E / 'nova'),
                 'OS_NOVA_CONFIG_FILES': 'api-paste.ini;nova.conf;nova-api.conf'},
                [E / 'nova/nova.conf', E / 'nova/api-paste.ini'])),
            'glance-api': ('glance', wsgi(
                'glance-api', 'glance', 'glance.wsgi.api',
                {'OS_GLANCE_CONFIG_DIR': str(E / 'glance')},
                [E / 'glance/glance-api.conf', E / 'glance/glance-api-paste.ini'])),
            'neutron-api': ('neutron', ([str(V / 'bin/uwsgi'), '--ini',
                                         str(E / 'neutron/uwsgi.ini')], env,
                                        [E / 'neutron/uwsgi.ini', E / 'neutron/neutron.conf',
                                         E / 'neutron/plugins/ml2/ml2_conf.ini', *vfp])),
            'cinder-api': ('cinder', wsgi(
                'cinder-api', 'cinder', 'cinder.wsgi.api',
                {'DEVCLOUD_WSGI_ARGS': ' '.join(
                    [*cinder_conf, '--log-file', str(s.logs / 'cinder-api.log')])},
                [E / 'cinder/cinder.conf', E / 'cinder/api-paste.ini'])),
            'cinder-scheduler': ('cinder', ([str(V / 'bin/cinder-scheduler'), *cinder_conf],
                                            cinder_env, [*cinder_fps, *vfp])),
            'cinder-volume': ('cinder', ([str(V / 'bin/cinder-volume'), *cinder_conf],
                                         cinder_env, [*cinder_fps, *vfp])),
            'nova-compute': (None, ([str(V / 'bin/python'), str(LIB / 'nova_compute.py'),
                                     *nova_conf, '--config-file',
                                     str(E / 'nova/nova-compute.conf')], env,
                                    [E / 'nova/nova.conf', LIB / 'nova_compute.py',
                                     LIB / 'devcloud_fake_driver.py', *vfp])),
        }

    def start_openstack(self, syncs, req_hash):
        s, L, V = self.s, self.s.logs, self.s.venv
        specs = self.service_specs()
        started = {}  # name -> log size at launch (for services launched by this run)
        started_at = {}  # name -> UTC launch time
        lock = threading.Lock()

        def launch(name):
            cmd, env, fps = specs[name][1]
            logf = L / SERVICES[name][1][0]
            size = logf.stat().st_size if logf.exists() else 0
            # 2 cores: services off nova-compute's critical path start at a lower priority
            # (back to normal once the cloud is ready)
            nice = STARTUP_NICE if name in LOW_PRIORITY_AT_START else 0
            t0 = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%S')
            if self.procs.launch(name, cmd, env, fps, nice=nice):
                with lock:
                    started[name] = size
                    started_at[name] = t0

        # every API/service starts as soon as its own schema is there (they need keystone
        # only for requests); conductor + scheduler first: nova-compute waits for them
        launchers, launch_errors = [], []
        for name in ('nova-conductor', 'nova-scheduler', 'keystone', 'placement-api',
                     'nova-api', 'glance-api', 'neutron-api', 'cinder-api', 'cinder-scheduler',
                     'cinder-volume'):
            dep = specs[name][0]
            if dep not in syncs:
                launch(name)
                continue
            if name == 'keystone':
                continue  # below, in this thread

            def after_sync(name=name, dep=dep):
                syncs[dep].thread.join()
                if syncs[dep].err is None:
                    try:
                        launch(name)
                    except Exception as e:  # noqa: BLE001 - re-raised below
                        launch_errors.append(Failure(f'could not start {name}: {e!r}', name))
            t = threading.Thread(target=after_sync, daemon=True)
            t.start()
            launchers.append(t)

        # ---- keystone answers + registration (+ snapshot of the registered keystone DB)
        if 'keystone' in syncs:
            syncs['keystone'].wait()
            log('keystone schema ready')
            launch('keystone')
        self.wait_http('keystone', s.auth_url)
        log(f'keystone answers on {s.auth_url}')
        self.register()
        queue_marker = s.data / '.conductor-queue'
        if queue_marker.exists() and 'nova' not in syncs:
            launch('nova-compute')  # warm start: its first ping waits in the durable queue
        for job in syncs.values():
            job.wait()
        if syncs:
            log(f'schemas ready: {", ".join(syncs)}')
        for t in launchers:
            t.join()
        if launch_errors:
            raise launch_errors[0]

        if self.rabbit_wait:
            t, result = self.rabbit_wait
            t.join(WAIT + 150)
            if 'ok' not in result:
                raise Failure(result.get('err', 'rabbitmq did not start'), 'rabbitmq')
            log('rabbitmq up')
        elif not self.procs.pid('rabbitmq'):
            raise Failure('rabbitmq is not running', 'rabbitmq')

        # nova-compute pings the conductor at start with a 10 s timeout; a ping sent before the
        # conductor's queue exists is lost. The queue is durable, so it exists from the start
        # when this RabbitMQ node has seen a conductor before (data/.conductor-queue); else
        # launch nova-compute once the conductor is up.
        if 'nova-conductor' in started and not queue_marker.exists():
            self.wait('nova-conductor to start',
                      lambda: self.log_has('nova-conductor', started, b'Starting conductor node'),
                      'nova-conductor')
        launch('nova-compute')
        compute_new = 'nova-compute' in started
        compute_t0 = started_at.get('nova-compute', '')

        for svc, key in (('placement-api', 'placement'), ('glance-api', 'glance'),
                         ('neutron-api', 'neutron'), ('nova-api', 'nova'),
                         ('cinder-api', 'cinder')):
            self.wait_http(svc, s.url(key) + '/')
        # authtoken really enforced: no token -> 401 everywhere
        for svc, url in (('glance-api', s.url('glance') + '/v2/images'),
                         ('nova-api', s.url('nova') + '/v2.1/flavors'),
                         ('placement-api', s.url('placement') + '/resource_providers'),
                         ('neutron-api', s.url('neutron') + '/v2.0/networks'),
                         ('cinder-api', s.url('cinder') + '/v3/volumes')):
            code = self.wait(f'{svc} to answer {url}',
                             lambda url=url: request('GET', url, timeout=30)[0], svc)
            if code != 401:
                raise Failure(f'{url} without a token returned {code} (expected 401)', svc)
        log('all 6 APIs answer (401 without a token)')

        # ---- ready for boots: RP in placement, host mapped, heartbeat newer than launch
        tok = self.wait('an admin token from keystone', self.token, 'keystone', interval=1)
        hdr = {'X-Auth-Token': tok}

        def rp_visible():
            code, _, body = request('GET', s.url('placement') + '/resource_providers?name='
                                    + NOVA_HOST, headers=hdr, timeout=30)
            return code == 200 and bool(json.loads(body).get('resource_providers'))
        self.wait("nova-compute's resource provider in placement", rp_visible, 'nova-compute',
                  interval=0.5)
        marker = s.data / '.discovered'
        if not marker.exists():
            run([str(V / 'bin/nova-manage'), '--config-file', str(s.etc / 'nova/nova.conf'),
                 'cell_v2', 'discover_hosts'], L / 'nova-manage.log', self.env,
                'nova-manage cell_v2 discover_hosts', 'nova-compute', timeout=WAIT)
            marker.write_text(f'{NOVA_HOST}\n')

        def heartbeat(binary, since):
            # after a restart os-services shows "up" from the previous run's heartbeat; a boot
            # sent before nova-compute's init_host has finished goes to ERROR, one sent before
            # the scheduler listens is lost
            code, _, body = request('GET', s.url('nova') + '/v2.1/os-services?binary='
                                    + binary, headers=hdr, timeout=30)
            if code != 200:
                return False
            return any(svc['host'] == NOVA_HOST and svc['state'] == 'up'
                       and (svc.get('updated_at') or '')[:19] >= since
                       for svc in json.loads(body).get('services', []))
        self.wait('a nova-compute heartbeat newer than its start',
                  lambda: heartbeat('nova-compute', compute_t0 if compute_new else ''),
                  'nova-compute', interval=0.5)
        queue_marker.write_text('the durable conductor queue exists in this RabbitMQ node\n')
        # the scheduler must listen before the first boot (a cast to a missing queue is lost)
        for name in ('nova-scheduler', 'nova-conductor'):
            if name in started:
                self.wait(f'{name} to start', lambda n=name: self.log_has(
                    n, started, b'Starting ' + n.split('-')[1].encode() + b' node'), name)
        self.wait_cinder(hdr)
        self.network_defaults(hdr)
        log(f'READY: export OS_CLIENT_CONFIG_FILE={s.state}/clouds.yaml OS_CLOUD=devcloud'
            ' (or devcloud-demo)')

    def log_has(self, name, offsets, needle):
        """needle in the service's log since its launch by this run."""
        with contextlib.suppress(OSError), open(self.s.logs / SERVICES[name][1][0], 'rb') as f:
            f.seek(offsets.get(name, 0))
            return needle in f.read()
        return False

    # ------------------------------------------------------------------ registration
    def register_config(self):
        s = self.s
        catalog = [
            ['keystone', 'identity', s.auth_url, 'OpenStack Identity'],
            ['glance', 'image', s.url('glance'), 'OpenStack Image'],
            ['nova', 'compute', s.url('nova') + '/v2.1', 'OpenStack Compute'],
            ['placement', 'placement', s.url('placement'), 'Placement API'],
            ['neutron', 'network', s.url('neutron'), 'OpenStack Networking'],
            # the same Cinder v3 API under both types clients look for
            ['cinderv3', 'volumev3', s.url('cinder') + '/v3', 'OpenStack Block Storage'],
            ['cinder', 'block-storage', s.url('cinder') + '/v3', 'OpenStack Block Storage'],
        ]
        return json.dumps({'auth_url': s.auth_url, 'region': REGION, 'catalog': catalog})

    def register_mark(self, keystone_mark):
        s = self.s
        return sha(s.admin_pw, s.service_pw, s.demo_pw, self.register_config(),
                   (LIB / 'register.py').read_bytes(), keystone_mark)

    def register(self):
        """lib/register.py: service project/users, catalog, demo user (idempotent)."""
        s = self.s
        sync_mark = s.data / '.sync-keystone'
        mark = self.register_mark(sync_mark.read_text().strip() if sync_mark.exists() else '')
        mfile = s.data / '.registered'
        if mfile.exists() and mfile.read_text().strip() == mark:
            return
        env = dict(self.env, DEVCLOUD_REGISTER=self.register_config(),
                   DEVCLOUD_ADMIN_PASSWORD=s.admin_pw, DEVCLOUD_SERVICE_PASSWORD=s.service_pw,
                   DEVCLOUD_DEMO_PASSWORD=s.demo_pw)
        logf = s.logs / 'register.log'
        for attempt in (1, 2, 3):
            try:
                run([str(s.venv / 'bin/python'), str(LIB / 'register.py')], logf, env,
                    'keystone registration (lib/register.py)', 'keystone', timeout=WAIT)
                break
            except Failure:
                if attempt == 3:
                    raise
                time.sleep(3)
        mfile.write_text(mark + '\n')
        log('keystone: service users, catalog and demo user registered')
        if self.keystone_snapshot:
            self.dump(self.keystone_snapshot, logf)
