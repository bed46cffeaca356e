"""Database schemas: parallel syncs, keystone keys, and the pristine-schema snapshots."""

from __future__ import annotations

import base64
import os
import subprocess
import threading

from devcloud_common import REGION, SYNC_WAIT, WAIT, Failure, log, sha
from devcloud_procs import run


class Schemas:
    """Schema sync steps of every service (mixed into Cloud)."""

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
            # + the metadata definitions Glance ships (GET /v2/metadefs/* is empty without)
            'glance': (['glance'], E / 'glance/glance-api.conf', 'metadefs', [
                manage('glance-manage', str(E / 'glance/glance-api.conf'), 'db', 'sync'),
                manage('glance-manage', str(E / 'glance/glance-api.conf'), 'db',
                       'load_metadefs', '--path', str(V / 'etc/glance/metadefs'))]),
            'cinder': (['cinder'], E / 'cinder/cinder.conf', '', [
                manage('cinder-manage', str(E / 'cinder/cinder.conf'), 'db', 'sync')]),
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
