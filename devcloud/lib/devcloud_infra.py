"""Infrastructure services: epmd + RabbitMQ, MariaDB, OVN NB/SB + northd, the fake chassis."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

from devcloud_common import DATABASES, LIB, NOVA_HOST, RABBIT_NODE, WAIT, log
from devcloud_procs import port_in_use, run, unix_answers


class Infra:
    """Start steps of the services OpenStack depends on (mixed into Cloud)."""

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
