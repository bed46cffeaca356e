"""devcloud's emulated hypervisor: nova's fake driver with a cloud-init style console.

Loaded by nova-compute with ``compute_driver = devcloud_fake_driver.ConsoleKeysFakeDriver``.
nova imports drivers strictly as ``nova.virt.<compute_driver>``, so devcloud starts
nova-compute through ``nova_compute.py``, which appends this directory to the ``nova.virt``
package path (the venv's nova stays untouched).

No guest runs. ``get_console_output`` returns what a serial console of a cloud-init image
shows at first boot, including the SSH host key fingerprint and key blocks. The host keys
(ECDSA P-256 and Ed25519) are derived deterministically from the instance uuid, so the same
server always prints the same keys and every server has its own.
"""

import base64
import datetime
import hashlib
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from nova.virt import fake

_P256_ORDER = int('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 16)
CLOUD_INIT_VERSION = '23.1.2-0ubuntu0~22.04.1'


def _seed(uuid, purpose):
    return hashlib.sha256((f'devcloud-host-key:{purpose}:{uuid}').encode()).digest()


def host_keys(uuid):
    """[(type, base64 blob, bits, label)] for the instance, in cloud-init's glob order."""
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(_seed(uuid, 'ed25519'))
    scalar = int.from_bytes(_seed(uuid, 'ecdsa'), 'big') % (_P256_ORDER - 1) + 1
    ecd = ec.derive_private_key(scalar, ec.SECP256R1())
    keys = []
    for priv, bits, label in ((ecd, 256, 'ECDSA'), (ed, 256, 'ED25519')):
        line = priv.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        ktype, blob = line.split()[:2]
        keys.append((ktype, blob, bits, label))
    return keys


def fingerprint(blob):
    """What ``ssh-keygen -l`` prints: SHA256:<unpadded base64 of sha256(key blob)>."""
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return 'SHA256:' + base64.b64encode(digest).decode().rstrip('=')


def console_text(uuid, hostname, boot_time=None):
    """The console log of a first boot, with CRLF line ends like a real serial console."""
    hostname = hostname or 'localhost'
    when = boot_time or datetime.datetime.now(datetime.UTC)
    stamp = f'{when:%b} {when.day:2d} {when:%H:%M:%S}'
    keys = host_keys(uuid)
    # a stable per-instance "uptime" so the text looks like a kernel log
    jitter = struct.unpack('>H', _seed(uuid, 'uptime')[:2])[0] / 65535.0
    up = 6.0 + jitter * 3
    ci = f'Cloud-init v. {CLOUD_INIT_VERSION}'
    lines = [
        '[    0.000000] Linux version 5.15.0-91-generic (buildd@lcy02-amd64-045) '
        '(gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0) #101-Ubuntu SMP',
        '[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=LABEL=cloudimg-rootfs ro '
        'console=tty1 console=ttyS0',
        f"[{up:12.6f}] cloud-init[512]: {ci} running 'init-local'.",
        f"[{up + 1.2:12.6f}] cloud-init[598]: {ci} running 'init'. Up {up + 1.2:.2f} seconds.",
        f'[{up + 1.9:12.6f}] cloud-init[598]: Generating public/private ed25519 key pair.',
        f'[{up + 2.0:12.6f}] cloud-init[598]: Generating public/private ecdsa key pair.',
        '',
        f'Ubuntu 22.04.3 LTS {hostname} ttyS0',
        '',
        f'{hostname} login: ',
    ]
    tag = f'<14>{stamp} ec2: '
    lines += [
        tag,
        tag + '#' * 61,
        tag + '-----BEGIN SSH HOST KEY FINGERPRINTS-----',
    ]
    lines += [tag + f'{bits} {fingerprint(blob)} root@{hostname} ({label})'
              for _, blob, bits, label in keys]
    lines += [
        tag + '-----END SSH HOST KEY FINGERPRINTS-----',
        tag + '#' * 61,
        '-----BEGIN SSH HOST KEY KEYS-----',
    ]
    lines += [f'{ktype} {blob} root@{hostname}' for ktype, blob, _, _ in keys]
    lines += [
        '-----END SSH HOST KEY KEYS-----',
        f"[{up + 4.1:12.6f}] cloud-init[760]: {ci} running 'modules:final'. "
        f'Up {up + 4.1:.2f} seconds.',
        f'[{up + 4.3:12.6f}] cloud-init[760]: {ci} finished. '
        f'Datasource DataSourceOpenStackLocal [net,ver=2].  Up {up + 4.3:.2f} seconds',
        '',
    ]
    return '\r\n'.join(lines)


class ConsoleKeysFakeDriver(fake.FakeDriverWithoutFakeNodes):
    """FakeDriverWithoutFakeNodes (1000 vCPUs, survives restarts) + cloud-init console."""

    def get_console_output(self, context, instance):
        boot = getattr(instance, 'launched_at', None) or getattr(instance, 'created_at', None)
        return console_text(instance.uuid, getattr(instance, 'hostname', None), boot)
