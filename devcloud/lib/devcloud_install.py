"""Host preparation before anything starts: free ports, apt packages, the cloud's venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from devcloud_common import APT_PACKAGES, DEVCLOUD, Failure, log, sha
from devcloud_procs import port_in_use, port_owner, run


class HostSetup:
    """Cloud steps that run before any configuration is written (mixed into Cloud)."""

    def check_ports(self):
        """Refuse to start over a port held by a process we did not start."""
        owners = {'keystone': 'keystone', 'glance': 'glance-api', 'nova': 'nova-api',
                  'placement': 'placement-api', 'neutron': 'neutron-api',
                  'cinder': 'cinder-api', 'rabbit': 'rabbitmq', 'rabbit_dist': 'rabbitmq',
                  'epmd': 'epmd'}
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
