#!/usr/bin/env python3
"""devcloud: a real, throwaway OpenStack on 127.0.0.1 (``devcloud/up``, ``down``, ``status``).

Keystone, Glance (file store), Placement, Nova (api, conductor, scheduler, compute with an
emulated hypervisor), Neutron (ML2/OVN with Debian's ovn-central), RabbitMQ and MariaDB, all
listening on 127.0.0.1 or unix sockets, every API behind keystonemiddleware.

Stdlib only: it runs with the system python3 before the cloud's own virtualenv exists.
State (default ``<repo>/.devcloud``, env DEVCLOUD_STATE): venv/ etc/ data/ logs/ run/
clouds.yaml. Every process is started in its own session; run/<name>.pid records its pid and
start time, and ``down`` signals only those process groups.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import fcntl
import json
import os
import shutil
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

from devcloud_common import (
    APT_PACKAGES,
    DATABASES,
    DEFAULT_PORTS,
    DEVCLOUD,
    INFRA_SERVICES,
    LIB,
    LOW_PRIORITY_AT_START,
    NOVA_HOST,
    OPENSTACK_SERVICES,
    RABBIT_NODE,
    REGION,
    REPO,
    SERVICES,
    STARTUP_NICE,
    SYNC_WAIT,
    T0,
    WAIT,
    Failure,
    log,
    sha,
)
from devcloud_procs import (
    Procs,
    group_members,
    port_in_use,
    port_owner,
    request,
    run,
    show_failure,
    tcp_answers,
    unix_answers,
)


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


# ----------------------------------------------------------------------------- config templates
# A template is the file's exact text with ${name} placeholders (string.Template: the configs
# hold no $ of their own, and a missing value raises instead of writing a broken file).
TEMPLATES = LIB / 'templates'


def render(name, **values):
    """The text of templates/<name>.tmpl with its placeholders filled in."""
    return string.Template((TEMPLATES / f'{name}.tmpl').read_text()).substitute(values)


# ----------------------------------------------------------------------------- the cloud
class Cloud:
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

    def rabbit_env(self):
        s, p = self.s, self.s.ports
        env = dict(self.env)
        env.update({
            'HOME': str(s.data / 'rabbit' / 'home'),
            'RABBITMQ_NODENAME': RABBIT_NODE,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(p['rabbit']),
            'RABBITMQ_DIST_PORT': str(p['rabbit_dist']),
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS': '-kernel inet_dist_use_interface {127,0,0,1}',
            'RABBITMQ_CONFIG_FILE': str(s.etc / 'rabbit' / 'rabbitmq.conf'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': str(s.etc / 'rabbit' / 'enabled_plugins'),
            'RABBITMQ_MNESIA_BASE': str(s.data / 'rabbit' / 'mnesia'),
            'RABBITMQ_LOG_BASE': str(s.logs / 'rabbit'),
            'RABBITMQ_PID_FILE': str(s.run / 'rabbitmq-beam.pid'),
            'RABBITMQ_CONF_ENV_FILE': '/dev/null',
            'ERL_EPMD_ADDRESS': '127.0.0.1',
            'ERL_EPMD_PORT': str(p['epmd']),
            # part of the fingerprint: the services declare durable topic queues
            'DEVCLOUD_AMQP_QUEUES': 'durable',
        })
        return env

    # ------------------------------------------------------------------ checks + install
    def check_ports(self):
        """Refuse to start over a port held by a process we did not start."""
        owners = {'keystone': 'keystone', 'glance': 'glance-api', 'nova': 'nova-api',
                  'placement': 'placement-api', 'neutron': 'neutron-api',
                  'rabbit': 'rabbitmq', 'rabbit_dist': 'rabbitmq', 'epmd': 'epmd'}
        busy = []
        for key, svc in owners.items():
            port = self.s.ports[key]
            if self.procs.pid(svc) or not port_in_use(port):
                continue
            pid, comm = port_owner(port)
            is_epmd = bool(comm) and os.path.basename(comm.split()[0]) == 'epmd'
            if key == 'epmd' and (is_epmd or self.procs.pid('rabbitmq')):
                continue  # a shared epmd is fine: our node only registers its name there
            who = f'pid {pid} ({comm})' if pid else 'another process'
            busy.append(f'127.0.0.1:{port} ({svc}, DEVCLOUD_{key.upper()}_PORT) is in use by {who}')
        if busy:
            raise Failure('refusing to start, port(s) taken by processes devcloud did not '
                          'start:\n  ' + '\n  '.join(busy))

    def apt(self):
        q = subprocess.run(['dpkg-query', '-W', '-f=${Package} ${db:Status-Status}\n',
                            *APT_PACKAGES], capture_output=True, text=True)
        have = {ln.split()[0] for ln in q.stdout.splitlines() if ln.endswith(' installed')}
        missing = [p for p in APT_PACKAGES if p not in have]
        if not missing:
            return
        log(f'apt-get install {" ".join(missing)} (packaged services kept from starting)')
        logf = self.s.logs / 'apt-install.log'
        prc = Path('/usr/sbin/policy-rc.d')
        ours = not prc.exists()
        if ours:  # Debian's mariadb/rabbitmq/ovn would start on install otherwise
            prc.write_text('#!/bin/sh\nexit 101\n')
            prc.chmod(0o755)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        try:
            lock = ['-o', 'DPkg::Lock::Timeout=600']
            run(['apt-get', *lock, 'update', '-q'], logf, env, 'apt-get update', 'apt',
                timeout=1200)
            run(['apt-get', *lock, 'install', '-y', '-q', '--no-install-recommends', *missing],
                logf, env, 'apt-get install', 'apt', timeout=1800)
        finally:
            if ours:
                prc.unlink()
        log('apt packages installed')

    def venv(self):
        """The cloud's OWN virtualenv (never the tool's .venv), pinned; a marker holds the
        hash of requirements + constraints + interpreter of the last good install."""
        s = self.s
        req, con = DEVCLOUD / 'requirements.txt', DEVCLOUD / 'constraints.txt'
        py = shutil.which(s.python) or s.python
        version = [py, '-c', 'import sys; print(sys.version)']
        pyver = subprocess.run(version, capture_output=True, text=True).stdout.strip()
        want = sha(req.read_bytes(), con.read_bytes(), pyver)
        vpy, marker = s.venv / 'bin' / 'python', s.venv / '.devcloud-installed'
        if vpy.exists() and marker.exists() and marker.read_text().strip() == want:
            return want
        if vpy.exists():
            version[0] = vpy
            have = subprocess.run(version, capture_output=True, text=True).stdout.strip()
            if have != pyver:
                log(f'the cloud venv was made with another python ({have}): recreating it')
                shutil.rmtree(s.venv)
        if vpy.exists():
            log('updating the cloud venv to the pinned requirements')
        else:
            log(f'creating the cloud venv {s.venv} ({py}) + pinned pip install (1-4 min)')
        logf = s.logs / 'pip-install.log'
        if not vpy.exists():
            run([py, '-m', 'venv', s.venv], logf, what='python -m venv', service='venv')
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
        for attempt in (1, 2, 3):  # registries hiccup; pip resumes from its cache
            try:
                run([s.venv / 'bin' / 'pip', 'install', '-q', '-c', con, '-r', req], logf, env,
                    f'pip install (attempt {attempt})', 'venv', timeout=3600)
                break
            except Failure:
                if attempt == 3:
                    raise
                log(f'pip install failed, retrying in 10s (see {logf})')
                time.sleep(10)
        self.check_uwsgi(pyver, logf)
        marker.write_text(want + '\n')
        log('cloud venv ready')
        return want

    def check_uwsgi(self, pyver, logf):
        """uWSGI embeds libpython at build time; a wheel built (and cached by pip) for another
        interpreter of the same tag cannot import the venv's stdlib. Rebuild it then."""
        s = self.s
        probe = s.venv / 'uwsgi-probe.py'
        probe.write_text('import subprocess, sys\nprint("DEVCLOUD-PY", sys.version)\n')
        try:
            for attempt in (1, 2):
                r = subprocess.run([s.venv / 'bin/uwsgi', '--home', s.venv, '--pyrun', probe],
                                   capture_output=True, text=True, timeout=120,
                                   stdin=subprocess.DEVNULL)
                if f'DEVCLOUD-PY {pyver}' in r.stdout + r.stderr:
                    return
                with open(logf, 'a') as f:
                    f.write(f'uwsgi probe failed:\n{r.stdout}\n{r.stderr}\n')
                if attempt == 2:
                    raise Failure('uWSGI in the cloud venv cannot run the venv python',
                                  'venv', [logf])
                log('uWSGI was built for another python: rebuilding it without the pip cache')
                pin = [ln.strip() for ln in (DEVCLOUD / 'requirements.txt').read_text().split()
                       if ln.lower().startswith('uwsgi')]
                run([s.venv / 'bin/pip', 'install', '-q', '--no-cache-dir', '--force-reinstall',
                     '--no-deps', *pin], logf, what='pip rebuild uwsgi', service='venv',
                    timeout=1800)
        finally:
            probe.unlink()

    # ------------------------------------------------------------------ configuration
    def authsect(self, section, user):
        return (f'[{section}]\nauth_type = password\nauth_url = {self.s.auth_url}\n'
                f'project_name = service\nproject_domain_name = Default\n'
                f'username = {user}\nuser_domain_name = Default\n'
                f'password = {self.s.service_pw}\nregion_name = {REGION}\n')

    def authtoken(self, user):
        return self.authsect('keystone_authtoken', user) + (
            f'www_authenticate_uri = {self.s.url("keystone")}\n'
            'service_token_roles = service\nservice_token_roles_required = true\n')

    def write(self, rel, text):
        p = self.s.etc / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
        return p

    def write_configs(self):
        s, P = self.s, self.s.ports
        E, D, L, R, V = s.etc, s.data, s.logs, s.run, s.venv
        rabbit_url = f'rabbit://guest:guest@127.0.0.1:{P["rabbit"]}/'
        policy = render('oslo_policy.conf')
        for d in ('nova/lock', 'nova/instances', 'neutron/lock', 'glance/images',
                  'glance/staging', 'glance/tasks', 'glance/cache', 'glance/lock', 'keystone',
                  'home', 'rabbit/home', 'rabbit/mnesia', 'ovn'):
            (D / d).mkdir(parents=True, exist_ok=True)
        (L / 'ovn').mkdir(parents=True, exist_ok=True)
        (L / 'rabbit').mkdir(parents=True, exist_ok=True)

        self.write('keystone/keystone.conf', render(
            'keystone.conf', logs=L, data=D, database=s.dburl('keystone')))

        self.write('glance/glance-api-paste.ini',
                   (V / 'etc/glance/glance-api-paste.ini').read_text())
        # the shared sections close the file: appended, so the template ends in a newline
        self.write('glance/glance-api.conf', render(
            'glance-api.conf', logs=L, data=D, etc=E, database=s.dburl('glance'))
            + policy + self.authtoken('glance'))

        self.write('placement/placement.conf', render(
            'placement.conf', logs=L, database=s.dburl('placement'))
            + policy + self.authtoken('placement'))

        self.write('nova/api-paste.ini', (V / 'etc/nova/api-paste.ini').read_text())
        svc_user = self.authsect('service_user', 'nova').split('\n', 1)[1]
        self.write('nova/nova.conf', render(
            'nova.conf', nova_host=NOVA_HOST, data=D, logs=L, etc=E, rabbit_url=rabbit_url,
            api_database=s.dburl('nova_api'), database=s.dburl('nova_cell1'),
            oslo_policy=policy, service_user=svc_user, keystone_authtoken=self.authtoken('nova'),
            placement=self.authsect('placement', 'placement'),
            neutron=self.authsect('neutron', 'neutron')))
        self.write('nova/nova-api.conf', render('nova-api.conf'))
        self.write('nova/nova-compute.conf', render('nova-compute.conf'))

        self.write('neutron/api-paste.ini', (V / 'etc/neutron/api-paste.ini').read_text())
        self.write('neutron/neutron.conf', render(
            'neutron.conf', nova_host=NOVA_HOST, logs=L, data=D, etc=E, rabbit_url=rabbit_url,
            database=s.dburl('neutron'), oslo_policy=policy,
            keystone_authtoken=self.authtoken('neutron'), nova=self.authsect('nova', 'nova'),
            placement=self.authsect('placement', 'placement')))
        self.write('neutron/plugins/ml2/ml2_conf.ini', render('ml2_conf.ini', run=R))
        self.write('neutron/uwsgi.ini', render(
            'neutron-uwsgi.ini', port=P['neutron'], venv=V, lib=LIB, etc=E))

        self.write('mysql/my.cnf', render('my.cnf', data=D, run=R, logs=L))
        self.write('rabbit/rabbitmq.conf', render('rabbitmq.conf', port=P['rabbit']))
        self.write('rabbit/enabled_plugins', render('rabbitmq-enabled_plugins'))
        self.write('devcloud.json', json.dumps(s.as_dict(), indent=1) + '\n')
        self.write_clouds_yaml()

    def write_clouds_yaml(self):
        s = self.s
        # passwords as JSON strings: valid YAML whatever characters they hold
        text = render('clouds.yaml', state=s.state, auth_url=s.auth_url, region=REGION,
                      admin_pw=json.dumps(s.admin_pw), demo_pw=json.dumps(s.demo_pw))
        p = s.state / 'clouds.yaml'
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
            p.chmod(0o600)

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

    def start_infra(self):
        s, E, D, L, R = self.s, self.s.etc, self.s.data, self.s.logs, self.s.run
        env = self.env
        # ---- epmd (ours unless one already serves the port) + rabbitmq
        self.rabbit_wait = None
        if not self.procs.pid('epmd') and not port_in_use(s.ports['epmd']):
            epmd = shutil.which('epmd') or '/usr/bin/epmd'
            self.procs.launch('epmd', [epmd, '-port', str(s.ports['epmd'])],
                              dict(env, ERL_EPMD_ADDRESS='127.0.0.1'))
        renv = self.rabbit_env()
        if self.procs.launch('rabbitmq', ['/usr/lib/rabbitmq/bin/rabbitmq-server'], renv,
                             fp_extra=[E / 'rabbit/rabbitmq.conf']):
            result = {}

            def await_rabbit():  # await_startup works only once the node is in epmd: retry
                deadline = time.monotonic() + WAIT
                while time.monotonic() < deadline:
                    if not self.procs.pid('rabbitmq'):
                        result['err'] = 'rabbitmq died during startup'
                        return
                    r = subprocess.run(
                        ['/usr/lib/rabbitmq/bin/rabbitmqctl', '-q', '-n', RABBIT_NODE,
                         'await_startup', '--timeout', '60'], env=renv,
                        stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
                    if r.returncode == 0:
                        result['ok'] = True
                        return
                    time.sleep(1)
                result['err'] = f'timeout ({WAIT}s) waiting for rabbitmq await_startup'
            t = threading.Thread(target=await_rabbit, daemon=True)
            t.start()
            self.rabbit_wait = (t, result)

        # ---- mariadb: ONE server for every database, unix socket only
        if not (D / 'mysql' / 'mysql').exists():
            (D / 'mysql').mkdir(parents=True, exist_ok=True)
            run(['mariadb-install-db', '--defaults-file=%s' % (E / 'mysql/my.cnf'), '--user=root',
                 '--auth-root-authentication-method=normal'], L / 'mysql_install_db.log',
                env, 'mariadb-install-db', 'mysqld')
        self.procs.launch('mysqld', ['mariadbd', '--defaults-file=%s' % (E / 'mysql/my.cnf')],
                          env, fp_extra=[E / 'mysql/my.cnf'])

        # ---- OVN: NB + SB ovsdb-servers and northd on unix sockets
        for db, schema in (('nb', 'ovn-nb'), ('sb', 'ovn-sb')):
            f = D / 'ovn' / (f'ovn{db}_db.db')
            if not f.exists():
                run(['ovsdb-tool', 'create', f, f'/usr/share/ovn/{schema}.ovsschema'],
                    L / 'ovn/ovsdb-tool.log', env, 'ovsdb-tool create', 'ovsdb-' + db)
            self.procs.launch('ovsdb-' + db, [
                'ovsdb-server', str(f), f'--remote=punix:{R}/ovn{db}_db.sock',
                f'--unixctl={R}/ovsdb-{db}.ctl',
                f'--log-file={L}/ovn/ovsdb-{db}.log', '--no-chdir'], env)
        for db in ('nb', 'sb'):
            sock = R / (f'ovn{db}_db.sock')
            self.wait(f'the OVN {db.upper()} database socket {sock}',
                      lambda sock=sock: unix_answers(sock), 'ovsdb-' + db)
        self.procs.launch('ovn-northd', [
            'ovn-northd', '--ovnnb-db=' + env['OVN_NB_DB'], '--ovnsb-db=' + env['OVN_SB_DB'],
            f'--unixctl={R}/ovn-northd.ctl', f'--log-file={L}/ovn/ovn-northd.log',
            '--no-chdir'], env)
        self.fake_chassis()
        self.procs.launch('fake-ovn-controller', [str(LIB / 'fake_ovn_controller.sh')],
                          dict(env, DEVCLOUD_CHASSIS=NOVA_HOST),
                          fp_extra=[LIB / 'fake_ovn_controller.sh'])

        # ---- databases
        my = ['mariadb', '--defaults-file=%s' % (E / 'mysql/my.cnf'), '-uroot']
        self.wait(f'mariadb to accept connections on {R}/mysqld.sock',
                  lambda: subprocess.run([*my, '-e', 'select 1'], capture_output=True,
                                         timeout=30).returncode == 0, 'mysqld', interval=0.3)
        sql = ''.join(f'CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;'
                      for db in DATABASES)
        run([*my, '-e', sql], L / 'mysql-create.log', env, 'CREATE DATABASE', 'mysqld')
        log(f'mariadb + OVN up (fake chassis {NOVA_HOST})')

    def fake_chassis(self):
        """A chassis named after nova's host in the SB DB (+ Chassis_Private, so neutron sees
        a live OVN agent); fake_ovn_controller.sh claims its port bindings."""
        env, logf = self.env, self.s.logs / 'ovn/chassis.log'
        sb = ['ovn-sbctl', '--timeout=60']
        run([*sb, '--may-exist', 'chassis-add', NOVA_HOST, 'geneve', '127.0.0.1'], logf, env,
            'ovn-sbctl chassis-add', 'ovsdb-sb')
        run([*sb, 'set', 'chassis', NOVA_HOST, 'hostname=' + NOVA_HOST,
             'external_ids:ovn-bridge-mappings=public:br-ex',
             'other_config:ovn-bridge-mappings=public:br-ex',
             'external_ids:ovn-cms-options=enable-chassis-as-gw',
             'other_config:ovn-cms-options=enable-chassis-as-gw'], logf, env,
            'ovn-sbctl set chassis', 'ovsdb-sb')

        def find(table):
            return subprocess.run([*sb, '--bare', '--columns', '_uuid', 'find', table,
                                   'name=' + NOVA_HOST], env=env, capture_output=True,
                                  text=True).stdout.strip()
        if not find('chassis_private'):
            run([*sb, 'create', 'Chassis_Private', 'name=' + NOVA_HOST,
                 'chassis=' + find('chassis'), 'nb_cfg=0'], logf, env,
                'ovn-sbctl create Chassis_Private', 'ovsdb-sb')

    # ------------------------------------------------------------------ schemas
    def mysql(self, sql, logf=None, what='SQL'):
        """Run SQL as root over the unix socket; returns stdout."""
        cmd = ['mariadb', f'--defaults-file={self.s.etc / "mysql/my.cnf"}', '-uroot', '-N', '-B',
               '-e', sql]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            if logf:
                with open(logf, 'a') as f:
                    f.write(f'{what} failed: {r.stderr}\n')
            raise Failure(f'{what} failed: {r.stderr.strip()}', 'mysqld', [logf] if logf else None)
        return r.stdout

    def table_counts(self):
        out = self.mysql('SELECT table_schema, COUNT(*) FROM information_schema.tables '
                         'GROUP BY table_schema')
        return {ln.split('\t')[0]: int(ln.split('\t')[1]) for ln in out.splitlines() if ln}

    def register_config(self):
        s = self.s
        catalog = [
            ['keystone', 'identity', s.auth_url, 'OpenStack Identity'],
            ['glance', 'image', s.url('glance'), 'OpenStack Image'],
            ['nova', 'compute', s.url('nova') + '/v2.1', 'OpenStack Compute'],
            ['placement', 'placement', s.url('placement'), 'Placement API'],
            ['neutron', 'network', s.url('neutron'), 'OpenStack Networking'],
        ]
        return json.dumps({'auth_url': s.auth_url, 'region': REGION, 'catalog': catalog})

    def register_mark(self, keystone_mark):
        s = self.s
        return sha(s.admin_pw, s.service_pw, s.demo_pw, self.register_config(),
                   (LIB / 'register.py').read_bytes(), keystone_mark)

    def keystone_keys(self):
        """What keystone-manage fernet_setup/credential_setup write (keys 0 staged, 1 primary),
        without paying a keystone-manage start for each."""
        for d in ('fernet-keys', 'credential-keys'):
            repo = self.s.data / 'keystone' / d
            repo.mkdir(parents=True, exist_ok=True, mode=0o700)
            for i in ('0', '1'):
                if not (repo / i).exists():
                    tmp = repo / f'.{i}.tmp'
                    tmp.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
                    tmp.chmod(0o600)
                    tmp.replace(repo / i)

    def dump(self, snaps, logf):
        """Snapshot pristine schemas into the cache, one file per database (atomically)."""
        for db, path in snaps.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob(f'schema-{db}-*.sql'):
                old.unlink()
            tmp = path.with_suffix('.tmp')
            cmd = ['mariadb-dump', f'--defaults-file={self.s.etc / "mysql/my.cnf"}', '-uroot',
                   '--single-transaction', '--skip-comments', '--skip-dump-date',
                   '--databases', db]
            with open(tmp, 'wb') as out:
                r = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, timeout=WAIT)
            if r.returncode == 0:
                tmp.replace(path)
            else:  # a missing snapshot only costs time: never fail the start for it
                tmp.unlink()
                with open(logf, 'ab') as f:
                    f.write(b'schema snapshot failed: ' + r.stderr + b'\n')

    def restore(self, name, snaps, logf):
        """Load the per-database snapshots concurrently."""
        client = ['mariadb', f'--defaults-file={self.s.etc / "mysql/my.cnf"}', '-uroot']
        procs = []
        with open(logf, 'ab') as out:
            for path in snaps.values():
                with open(path, 'rb') as f:
                    procs.append((path, subprocess.Popen(client, stdin=f, stdout=out,
                                                         stderr=subprocess.STDOUT)))
            bad = [str(path) for path, p in procs if p.wait(timeout=WAIT) != 0]
        if bad:
            raise Failure(f'restore of {", ".join(bad)} failed', 'sync-' + name, [logf])

    def start_schema_syncs(self, req_hash):
        """Each service's schema in parallel (threads). data/.sync-<name> holds the hash of
        pins + config of the last good run, so a warm start skips them. A data-wiped start
        restores the pristine schemas snapshotted into <state>/cache/ by the first sync
        (keyed by the same hash; DEVCLOUD_SCHEMA_CACHE=0 disables it)."""
        s, E, D, L, V = self.s, self.s.etc, self.s.data, self.s.logs, self.s.venv
        km = [str(V / 'bin/keystone-manage'), '--config-file', str(E / 'keystone/keystone.conf')]
        nm = [str(V / 'bin/nova-manage'), '--config-file', str(E / 'nova/nova.conf')]
        ks = s.url('keystone') + '/v3'
        use_cache = os.environ.get('DEVCLOUD_SCHEMA_CACHE', '1') != '0'

        def nova_cells(logf):
            cells = self.mysql('SELECT name FROM nova_api.cell_mappings', logf).split()
            if 'cell0' not in cells:
                run([*nm, 'cell_v2', 'map_cell0', '--database_connection',
                     s.dburl('nova_cell0')], logf, self.env, 'nova-manage map_cell0', 'sync-nova')
            if 'cell1' not in cells:
                run([*nm, 'cell_v2', 'create_cell', '--name', 'cell1'], logf, self.env,
                    'nova-manage create_cell', 'sync-nova')

        def manage(*args):
            return [str(V / 'bin' / args[0]), '--config-file', *args[1:]]

        jobs = {  # name: (databases, config, extra mark input, sync steps)
            'keystone': (['keystone'], E / 'keystone/keystone.conf', s.admin_pw + ks, [
                [*km, 'db_sync'],
                lambda logf: self.keystone_keys(),
                [*km, 'bootstrap', '--bootstrap-username', 'admin', '--bootstrap-password',
                 s.admin_pw, '--bootstrap-project-name', 'admin', '--bootstrap-role-name',
                 'admin', '--bootstrap-service-name', 'keystone', '--bootstrap-region-id',
                 REGION, '--bootstrap-public-url', ks, '--bootstrap-internal-url', ks]]),
            'placement': (['placement'], E / 'placement/placement.conf', '', [
                manage('placement-manage', str(E / 'placement/placement.conf'), 'db', 'sync')]),
            'glance': (['glance'], E / 'glance/glance-api.conf', '', [
                manage('glance-manage', str(E / 'glance/glance-api.conf'), 'db', 'sync')]),
            'neutron': (['neutron'], E / 'neutron/neutron.conf', '', [
                manage('neutron-db-manage', str(E / 'neutron/neutron.conf'), '--config-file',
                       str(E / 'neutron/plugins/ml2/ml2_conf.ini'), 'upgrade', 'heads')]),
            'nova': (['nova_api', 'nova_cell0', 'nova_cell1'], E / 'nova/nova.conf', '', [
                [*nm, 'api_db', 'sync'], nova_cells, [*nm, 'db', 'sync']]),
        }
        self.keystone_snapshot = None
        syncs = {}
        counts = None
        for name, (dbs, conf, extra, steps) in jobs.items():
            mark = sha(req_hash, extra, conf.read_bytes())
            mfile = D / f'.sync-{name}'
            if mfile.exists() and mfile.read_text().strip() == mark \
                    and not os.environ.get('DEVCLOUD_FORCE_DBSYNC'):
                continue
            if (D / f'.restoring-{name}').exists():  # an earlier restore was interrupted
                self.mysql(''.join(f'DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} '
                                   'CHARACTER SET utf8mb4;' for db in dbs))
                (D / f'.restoring-{name}').unlink()
                counts = None
            if counts is None:
                counts = self.table_counts()
            empty = not any(counts.get(db) for db in dbs)
            key = sha(mark, self.register_mark(mark)) if name == 'keystone' else mark
            snap = {db: s.state / 'cache' / f'schema-{db}-{key[:20]}.sql' for db in dbs}
            restore = use_cache and empty and all(p.exists() for p in snap.values())
            if name == 'keystone' and empty and use_cache and not restore:
                self.keystone_snapshot = snap  # taken after registration (see register)
            logf = L / f'sync-{name}.log'
            syncs[name] = self.job(name, logf, self.sync_steps(
                name, dbs, steps, logf, mark, mfile, snap if restore else None,
                snap if (use_cache and empty and name != 'keystone') else None))
        if syncs:
            log(f'schema sync running in parallel: {", ".join(syncs)}'
                + ('' if not any(j.restoring for j in syncs.values())
                   else ' (restoring cached pristine schemas: '
                   + ', '.join(n for n, j in syncs.items() if j.restoring) + ')'))
        else:
            log('schemas up to date')
        return syncs

    def sync_steps(self, name, dbs, steps, logf, mark, mfile, restore_from, snapshot_to):
        flag = self.s.data / f'.restoring-{name}'

        def body():
            if restore_from:
                try:
                    flag.write_text('restore in progress\n')
                    self.restore(name, restore_from, logf)
                    flag.unlink()
                    if name == 'keystone':
                        self.keystone_keys()
                        (self.s.data / '.registered').write_text(self.register_mark(mark) + '\n')
                    mfile.write_text(mark + '\n')
                    return
                except (Failure, OSError, subprocess.SubprocessError) as e:
                    log(f'{name}: cached schema restore failed ({e}); running the real sync')
                    for path in restore_from.values():
                        path.unlink(missing_ok=True)
                    self.mysql(''.join(f'DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} '
                                       'CHARACTER SET utf8mb4;' for db in dbs), logf)
            for st in steps:
                if callable(st):
                    st(logf)
                else:
                    run(st, logf, self.env, f'{name} schema sync ({st[-1]})', 'sync-' + name,
                        timeout=SYNC_WAIT)
            if snapshot_to:
                self.dump(snapshot_to, logf)
            mfile.write_text(mark + '\n')
        body.restoring = bool(restore_from)
        return body

    class Job:
        """A step list in a background thread; errors are raised by wait()."""

        def __init__(self, name, logf, body):
            self.name, self.logf, self.err = name, logf, None
            self.restoring = getattr(body, 'restoring', False)
            self.thread = threading.Thread(target=self._run, args=(body,), daemon=True)
            self.thread.start()

        def _run(self, body):
            try:
                body()
            except Failure as e:
                self.err = e
            except Exception as e:  # noqa: BLE001 - re-raised by wait()
                self.err = Failure(f'{self.name}: {e!r}', 'sync-' + self.name, [self.logf])

        def wait(self, timeout=SYNC_WAIT + 60):
            self.thread.join(timeout)
            if self.thread.is_alive():
                raise Failure(f'timeout ({timeout}s) in {self.name}', 'sync-' + self.name,
                              [self.logf])
            if self.err:
                self.err.logs = self.err.logs or [self.logf]
                raise self.err

    def job(self, name, logf, body):
        return self.Job(name, logf, body)

    # ------------------------------------------------------------------ OpenStack services
    def service_specs(self):
        s, E, V = self.s, self.s.etc, self.s.venv
        env = self.env
        gunicorn = [str(V / 'bin/gunicorn'), '--pythonpath', str(LIB), '-w', '1',
                    '--threads', '4', '-k', 'gthread', '--timeout', '120',
                    '--graceful-timeout', '2', '--no-control-socket']
        nova_conf = ['--config-file', str(E / 'nova/nova.conf')]
        vfp = [V / '.devcloud-installed']

        def wsgi(name, port, app, cfg_env, fps):
            return ([*gunicorn, '-b', f'127.0.0.1:{s.ports[port]}', '--name', name,
                     'devcloud_wsgi:application'],
                    dict(env, DEVCLOUD_WSGI_APP=app, **cfg_env), [*fps, *vfp])
        return {  # name: (schema it needs, (cmd, env, fingerprint files))
            'nova-conductor': ('nova', ([str(V / 'bin/nova-conductor'), *nova_conf], env,
                                        [E / 'nova/nova.conf', *vfp])),
            'nova-scheduler': ('nova', ([str(V / 'bin/nova-scheduler'), *nova_conf], env,
                                        [E / 'nova/nova.conf', *vfp])),
            'keystone': ('keystone', wsgi(
                'keystone', 'keystone', 'keystone.wsgi.api',
                {'OS_KEYSTONE_CONFIG_FILES': str(E / 'keystone/keystone.conf')},
                [E / 'keystone/keystone.conf'])),
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
                     'nova-api', 'glance-api', 'neutron-api'):
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
                         ('neutron-api', 'neutron'), ('nova-api', 'nova')):
            self.wait_http(svc, s.url(key) + '/')
        # authtoken really enforced: no token -> 401 everywhere
        for svc, url in (('glance-api', s.url('glance') + '/v2/images'),
                         ('nova-api', s.url('nova') + '/v2.1/flavors'),
                         ('placement-api', s.url('placement') + '/resource_providers'),
                         ('neutron-api', s.url('neutron') + '/v2.0/networks')):
            code = self.wait(f'{svc} to answer {url}',
                             lambda url=url: request('GET', url, timeout=30)[0], svc)
            if code != 401:
                raise Failure(f'{url} without a token returned {code} (expected 401)', svc)
        log('all 5 APIs answer (401 without a token)')

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
        log(f'READY: export OS_CLIENT_CONFIG_FILE={s.state}/clouds.yaml OS_CLOUD=devcloud'
            ' (or devcloud-demo)')

    def log_has(self, name, offsets, needle):
        """needle in the service's log since its launch by this run."""
        with contextlib.suppress(OSError), open(self.s.logs / SERVICES[name][1][0], 'rb') as f:
            f.seek(offsets.get(name, 0))
            return needle in f.read()
        return False

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
            'nova-api': s.url('nova') + '/',
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
