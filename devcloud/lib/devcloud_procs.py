"""The process supervisor: pid records, process groups, port checks, setup commands.

Every process is started in its own session; run/<name>.pid records its pid and start time,
so a stale record (pid reused) never matches and ``down`` signals only our process groups.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud_common import SERVICES, TAIL, Failure, log

if TYPE_CHECKING:  # devcloud.py is the entry script: never imported at run time
    from devcloud import Settings


def proc_stat(pid):
    """(state, pgid, starttime) of a live pid, None if gone."""
    try:
        raw = Path(f'/proc/{pid}/stat').read_text()
    except (OSError, ValueError):
        return None
    fields = raw.rsplit(')', 1)[1].split()
    return fields[0], int(fields[2]), fields[19]


def group_members(pgid):
    """Live (non-zombie) pids of a process group."""
    out = []
    for p in os.listdir('/proc'):
        if p.isdigit():
            st = proc_stat(int(p))
            if st and st[1] == pgid and st[0] != 'Z':
                out.append(int(p))
    return out


class Procs:
    """Pid records in run/<name>.pid: {"pid", "start", "fp"} (start = /proc starttime)."""

    def __init__(self, s: Settings):
        self.s = s

    def record(self, name):
        try:
            return json.loads((self.s.run / (f'{name}.pid')).read_text())
        except (OSError, ValueError):
            return None

    def pid(self, name):
        """pid of our still-running process, else None (stale records never match)."""
        rec = self.record(name)
        if not rec:
            return None
        st = proc_stat(rec['pid'])
        if st and st[0] != 'Z' and st[2] == rec['start'] and st[1] == rec['pid']:
            return rec['pid']
        return None

    def launch(self, name, cmd, env, fp_extra=(), cwd=None, nice=0):
        """Start cmd in its own session unless it already runs with the same fingerprint.
        Returns True when a new process was started."""
        h = hashlib.sha256(json.dumps([cmd, sorted(env.items())]).encode())
        for f in fp_extra:
            h.update(Path(f).read_bytes() if Path(f).exists() else b'-')
        fp = h.hexdigest()
        if self.pid(name):
            if self.record(name).get('fp') == fp:
                return False
            log(f'{name}: configuration changed, restarting it')
            self.stop([name])
        out = open(self.s.logs / (f'{name}.stdout'), 'ab')  # noqa: SIM115 (child keeps it)
        try:
            prefix = ['nice', '-n', str(nice)] if nice else []  # nice execs: same pid
            p = subprocess.Popen(prefix + cmd, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=env, cwd=cwd or self.s.state,
                                 start_new_session=True)
        finally:
            out.close()
        st = proc_stat(p.pid)
        rec = {'pid': p.pid, 'start': st[2] if st else '?', 'fp': fp, 'cmd': cmd[0],
               'launched': time.time()}
        (self.s.run / (f'{name}.pid')).write_text(json.dumps(rec) + '\n')
        log(f'started {name} (pid {p.pid})')
        return True

    def renice(self, name, value=0):
        """Set the nice value of every thread of a service's process group."""
        pid = self.pid(name)
        for member in group_members(pid) if pid else ():
            with contextlib.suppress(OSError):
                for tid in os.listdir(f'/proc/{member}/task'):
                    with contextlib.suppress(OSError):
                        os.setpriority(os.PRIO_PROCESS, int(tid), value)

    def stop(self, names, timeout=15.0):
        """TERM the process groups of names at once, wait, then KILL what is left."""
        groups = {}
        for n in names:
            pid = self.pid(n)
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                groups[n] = pid
            with contextlib.suppress(FileNotFoundError):
                (self.s.run / (f'{n}.pid')).unlink()
        deadline = time.monotonic() + timeout
        while groups and time.monotonic() < deadline:
            if not any(group_members(p) for p in groups.values()):
                break
            time.sleep(0.2)
        for n, pid in groups.items():
            if group_members(pid):
                log(f'{n} did not stop within {timeout:.0f}s: SIGKILL')
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        return list(groups)


def tail(path, n=TAIL):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            lines = f.read().decode('utf-8', 'replace').splitlines()
    except OSError:
        return None
    return lines[-n:]


def show_failure(s: Settings, exc: Failure):
    print(f'\ndevcloud: FAILED: {exc}', file=sys.stderr)
    paths = list(exc.logs or [])
    if exc.service in SERVICES:
        paths += [s.logs / f for f in SERVICES[exc.service][1]]
    shown = 0
    for p in paths:
        lines = tail(p)
        if lines:
            print(f'devcloud: failed service: {exc.service or "?"}, log file: {p} '
                  f'(last {len(lines)} lines):', file=sys.stderr)
            for line in lines:
                print('    ' + line, file=sys.stderr)
            shown += 1
            if shown == 2:
                break
    if not shown and paths:
        print(f'devcloud: log files (empty or missing): {", ".join(map(str, paths))}',
              file=sys.stderr)
    if any(Procs(s).pid(name) for name in SERVICES):
        print('devcloud: processes started so far keep running; `devcloud/status` shows them, '
              '`devcloud/down` stops them.', file=sys.stderr)


# ----------------------------------------------------------------------------- net helpers
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(method, url, body=None, headers=None, timeout=10):
    """(status or None, headers, body bytes). Always with a timeout (a crash-looping
    gunicorn still accepts connections)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={'Content-Type': 'application/json', **(headers or {})})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (OSError, ValueError, http.client.HTTPException):
        return None, {}, b''


def port_in_use(port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return True
    return False


def port_owner(port):
    """'pid N (comm)' of the process listening on a TCP port, best effort."""
    inodes = set()
    for tbl in ('/proc/net/tcp', '/proc/net/tcp6'):
        with contextlib.suppress(OSError), open(tbl) as f:
            for line in list(f)[1:]:
                parts = line.split()
                if parts[3] == '0A' and int(parts[1].rsplit(':', 1)[1], 16) == port:
                    inodes.add(parts[9])
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f'/proc/{p}/fd'):
                link = os.readlink(f'/proc/{p}/fd/{fd}')
                if link.startswith('socket:[') and link[8:-1] in inodes:
                    comm = Path(f'/proc/{p}/comm').read_text().strip()
                    cmdline = Path(f'/proc/{p}/cmdline').read_bytes().replace(b'\0', b' ')
                    return int(p), cmdline.decode(errors='replace').strip()[:70] or comm
    return None, None


def unix_answers(path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(3)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def tcp_answers(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=3):
            return True
    except OSError:
        return False


def run(cmd, logfile, env=None, what=None, service=None, timeout=None):
    """Run a setup command; its output goes to logfile; raise Failure on error."""
    t0 = time.monotonic()
    with open(logfile, 'ab') as out:
        out.write((f'\n[{time.strftime("%H:%M:%S")}] $ ' + ' '.join(map(str, cmd)) + '\n').encode())
        out.flush()
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = f'timeout after {timeout}s'
        out.write(f'[exit {rc} after {time.monotonic() - t0:.1f}s]\n'.encode())
    if rc != 0:
        raise Failure(f'{what or cmd[0]} failed ({rc})', service, [logfile])
