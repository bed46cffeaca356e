"""SSH host keys from a server's console log, written into a known_hosts file.

cloud-init prints the host's public keys on the serial console at first boot, between
`-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----`. Reading them
there (over the authenticated compute API) lets the first `ssh` be verified instead of
trusted blindly.

Pure parts: `extract_host_keys` (console text -> keys), `missing_addresses` (which hosts
a known_hosts text lacks) and `rewrite` (known_hosts text with the entries of some hosts
replaced). I/O: `update_file` (atomic temp file + rename, mode 0600).

For other drivers (floating IPs): `add_addresses(cloud, server_address, server_id, [ip])`
adds an address of a server to the known_hosts file the manifest gives that server, with
the keys captured during this run (or read from the console log when there are none).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import struct
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud
    from bootstrap.model import Address

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"

# Key types OpenSSH accepts as host keys -> how many length-prefixed strings their blob
# holds (type name included). A blob must name its type and hold exactly that many
# complete strings: a line cut off mid-key fails the check.
KEY_TYPES = {
    "ssh-ed25519": 2,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "ssh-rsa": 3,
    "ssh-dss": 5,
    "sk-ssh-ed25519@openssh.com": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
}
_KEY_RE = re.compile(
    r"(?<![\w@.-])(" + "|".join(re.escape(t) for t in KEY_TYPES) + r")\s+([A-Za-z0-9+/]+={0,3})"
)

HostKey = tuple[str, str]  # (type, base64 blob)


def parse_key(line: str) -> HostKey | None:
    """The (type, base64) of an OpenSSH public key found in `line`, or None.

    Leading console noise (timestamps, syslog tags) and the trailing comment are ignored;
    the blob must decode and carry its own type name, so a cut-off key is rejected.
    """
    m = _KEY_RE.search(line)
    if m is None:
        return None
    ktype, blob = m.group(1), m.group(2)
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return None
    strings: list[bytes] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            return None
        (n,) = struct.unpack(">I", raw[pos : pos + 4])
        if pos + 4 + n > len(raw):
            return None
        strings.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    if len(strings) != KEY_TYPES[ktype] or strings[0] != ktype.encode():
        return None
    return ktype, blob


def extract_host_keys(console: str) -> list[HostKey]:
    """The host keys of the LAST complete key block in a console log ([] when none).

    Only a block with both markers counts: a log cut before END (still booting, or a
    truncated buffer) may miss keys. The last block wins because a rebuilt or re-run
    instance prints fresh keys after the old ones.
    """
    blocks: list[list[HostKey]] = []
    current: list[HostKey] | None = None
    for raw_line in console.splitlines():
        line = raw_line.strip("\r\n\x00 ")
        if line.endswith(BEGIN):
            current = []
        elif line.endswith(END):
            if current is not None:
                blocks.append(current)
            current = None
        elif current is not None:
            key = parse_key(line)
            if key is not None and key not in current:
                current.append(key)
    for block in reversed(blocks):
        if block:
            return block
    return []


# --- known_hosts text ------------------------------------------------------------------


def host_pattern(address: str) -> str:
    """How known_hosts names a host on port 22: the bare address."""
    return address


def _host_matches(pattern: str, address: str) -> bool:
    if pattern.startswith("|1|"):
        # Hashed entry (HashKnownHosts): |1|base64(salt)|base64(HMAC-SHA1(salt, host)).
        try:
            _, _, salt_b64, digest_b64 = pattern.split("|", 3)
            salt = base64.b64decode(salt_b64)
            digest = base64.b64decode(digest_b64)
        except (ValueError, binascii.Error):
            return False
        mac = hmac.new(salt, address.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(mac, digest)
    return pattern in (address, f"[{address}]:22")


def _split_entry(line: str) -> tuple[str, list[str], str] | None:
    """(marker, host patterns, rest) of an entry line; None for comments/blank lines."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    parts = stripped.split(None, 1)
    marker = ""
    if parts[0].startswith("@"):
        marker = parts[0]
        parts = parts[1].split(None, 1) if len(parts) > 1 else []
    if len(parts) < 2:
        return None
    return marker, parts[0].split(","), parts[1]


def missing_addresses(text: str, addresses: Iterable[str]) -> list[str]:
    """The addresses with no plain (unmarked) entry in a known_hosts text."""
    present: set[str] = set()
    wanted = list(dict.fromkeys(addresses))
    for line in text.splitlines():
        entry = _split_entry(line)
        if entry is None or entry[0]:
            continue
        for address in wanted:
            if any(_host_matches(p, address) for p in entry[1]):
                present.add(address)
    return [a for a in wanted if a not in present]


def rewrite(text: str, addresses: Iterable[str], keys: list[HostKey]) -> str:
    """`text` without the entries of `addresses`, plus one line per address and key.

    Lines for other hosts, comments and @cert-authority/@revoked lines are kept as they
    are; an entry listing several hosts only loses the replaced ones.
    """
    wanted = list(dict.fromkeys(addresses))
    out: list[str] = []
    for line in text.splitlines():
        entry = _split_entry(line)
        if entry is None or entry[0]:
            out.append(line)
            continue
        _marker, hosts, rest = entry
        kept = [h for h in hosts if not any(_host_matches(h, a) for a in wanted)]
        if len(kept) == len(hosts):
            out.append(line)
        elif kept:
            out.append(f"{','.join(kept)} {rest}")
    for address in wanted:
        for ktype, blob in keys:
            out.append(f"{host_pattern(address)} {ktype} {blob}")
    return "\n".join(out) + "\n" if out else ""


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def update_file(
    path: str,
    addresses: Iterable[str],
    keys: list[HostKey],
    lock: threading.Lock | None = None,
) -> bool:
    """Replace the entries of `addresses` in the file at `path`; True if it changed.

    Atomic: a temporary file in the same folder, mode 0600, renamed over the old one,
    so a reader never sees half a file. `lock` serialises writers of this process.
    """
    with lock or contextlib.nullcontext():
        old = read_text(path)
        new = rewrite(old, addresses, keys)
        if new == old and os.path.exists(path):
            return False
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(new)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return True


# --- sharing between drivers (per Cloud, no globals) -----------------------------------


@dataclass
class Registry:
    """What one connection knows about known_hosts files during a plan/apply run."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # server address -> known_hosts path, from the manifest (registered by servers.read_all)
    paths: dict[Any, str] = field(default_factory=dict)
    # server id -> host keys captured this run
    keys: dict[str, list[HostKey]] = field(default_factory=dict)


def registry(cloud: Cloud) -> Registry:
    return cloud.shared("known_hosts", Registry)


def register_path(cloud: Cloud, server: Address, path: str) -> None:
    registry(cloud).paths[server] = path


def record_keys(cloud: Cloud, server_id: str, keys: list[HostKey]) -> None:
    registry(cloud).keys[server_id] = list(keys)


def console_keys(cloud: Cloud, server_id: str) -> list[HostKey]:
    """The host keys in a server's console log now ([] when not printed yet)."""
    text = cloud.nova.servers.get_console_output(server_id) or ""
    return extract_host_keys(text)


def add_addresses(cloud: Cloud, server: Address, server_id: str, addresses: Iterable[str]) -> bool:
    """Add addresses of a server (e.g. its floating IP) to its known_hosts file.

    A no-op (False) when the manifest gives the server no `known_hosts`. Uses the keys
    captured this run, else reads the console log. Raises when no keys can be found.
    """
    reg = registry(cloud)
    path = reg.paths.get(server)
    if path is None:
        return False
    keys = reg.keys.get(server_id)
    if not keys:
        keys = console_keys(cloud, server_id)
        if not keys:
            from bootstrap.errors import ResourceFailed

            raise ResourceFailed(
                f"no SSH host keys in the console log of server {server_id}: cannot add "
                f"{', '.join(addresses)} to {path}",
                address=str(server),
            )
        reg.keys[server_id] = keys
    return update_file(path, addresses, keys, reg.lock)
