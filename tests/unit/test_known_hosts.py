"""known_hosts: host keys from cloud-init console text, and the file they go into."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import stat
import subprocess
import threading

import pytest

from bootstrap import known_hosts as kh

ECDSA = (
    "ecdsa-sha2-nistp256",
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEgdpxC/78Gy345Z5hrjmjg6XrNdlF3Zy"
    "OQa06CjXPyWs5ts4SmNxmmzIgHvY5a7a1gJDv3I0TRE4vB9S3CtKuY=",
)
ED25519 = ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIPRr/3rovB2VgDJFSg5AoPKKjhM/O7SPkoCGwNntnq5c")
RSA = (
    "ssh-rsa",
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDhauL0rDz0fmYnYZ86GniMKMC2Dv6RogxDslMoNOjlFC8TnqqdcJBlUon"
    "Ks2bqoHrehib6OtNvxN2Nqkco8bkhvA1lZp1qJG9WTFPmcfVmUPEoYUZMlivNyD2Yg5QIxf9jxQf1SlW3EfVA91H8"
    "m86XqzyTzK6cE+dA0Y4qriPWkQ==",
)
OTHER_ED25519 = (
    "ssh-ed25519",
    "AAAAC3NzaC1lZDI1NTE5AAAAINmwEOuXuyQMrhsB1ni5KMxP/LhDZdBjN6UYsA4fJX74",
)

# What an Ubuntu 22.04 cloud image prints on its serial console at first boot
# (cloud-init 23.1, /usr/lib/cloud-init/write-ssh-key-fingerprints): the fingerprints
# go through `logger -s -t ec2`, the keys are echoed as they are. CRLF line ends.
UBUNTU = "\r\n".join(
    [
        "[    0.000000] Linux version 5.15.0-91-generic (buildd@lcy02-amd64-045) #101-Ubuntu SMP",
        "[    5.912402] cloud-init[512]: Cloud-init v. 23.1.2-0ubuntu0~22.04.1 running "
        "'init-local'.",
        "[  OK  ] Finished Initial cloud-init job (pre-networking).",
        "[    7.204114] cloud-init[598]: Generating public/private rsa key pair.",
        "[    7.204378] cloud-init[598]: Your identification has been saved in "
        "/etc/ssh/ssh_host_rsa_key",
        "[    7.209931] cloud-init[598]: The key fingerprint is:",
        "[    7.210148] cloud-init[598]: SHA256:Qq4lbg3ofl6uX3p5w7aqU6Yz8cC8x6v8M4v0b2Zg0Xo "
        "root@web-1",
        "[    7.211562] cloud-init[598]: +---[RSA 3072]----+",
        "",
        "Ubuntu 22.04.3 LTS web-1 ttyS0",
        "",
        "web-1 login: <14>Nov 25 10:51:51 ec2: ",
        "<14>Nov 25 10:51:51 ec2: #############################################################",
        "<14>Nov 25 10:51:51 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
        "<14>Nov 25 10:51:51 ec2: 256 SHA256:aqrPpK7znmz99A05v0Rn2RENKVA6yPImSJmgSYW0E28 "
        "root@web-1 (ECDSA)",
        "<14>Nov 25 10:51:51 ec2: 256 SHA256:5FSKtGGVEqDwMmn57xAC9w66rwUjkVaIge/TGUsD6Dk "
        "root@web-1 (ED25519)",
        "<14>Nov 25 10:51:51 ec2: 1024 SHA256:Wr3lS1W3FGvC1bCj2eR3fQh4cq9c2Z0mX1Rk3L2b7yQ "
        "root@web-1 (RSA)",
        "<14>Nov 25 10:51:51 ec2: -----END SSH HOST KEY FINGERPRINTS-----",
        "<14>Nov 25 10:51:51 ec2: #############################################################",
        "-----BEGIN SSH HOST KEY KEYS-----",
        f"{ECDSA[0]} {ECDSA[1]} root@web-1",
        f"{ED25519[0]} {ED25519[1]} root@web-1",
        f"{RSA[0]} {RSA[1]} root@web-1",
        "-----END SSH HOST KEY KEYS-----",
        "[   11.138132] cloud-init[760]: Cloud-init v. 23.1.2-0ubuntu0~22.04.1 running "
        "'modules:final'. Up 11.14 seconds.",
        "",
    ]
)


def test_extracts_every_key_type_in_order_ignoring_comments_and_crlf():
    assert kh.extract_host_keys(UBUNTU) == [ECDSA, ED25519, RSA]


def test_no_block_means_no_keys():
    booting = UBUNTU.split("web-1 login:")[0]
    assert kh.extract_host_keys(booting) == []
    assert kh.extract_host_keys("") == []


def test_fingerprint_block_alone_is_not_keys():
    text = UBUNTU.split("-----BEGIN SSH HOST KEY KEYS-----")[0]
    assert kh.extract_host_keys(text) == []


def test_block_cut_before_its_end_is_ignored():
    # The console is read while cloud-init is still printing: not all keys are there yet.
    cut = UBUNTU.split(f"{RSA[0]} {RSA[1]}")[0]
    assert kh.extract_host_keys(cut) == []


def test_log_whose_start_was_truncated_still_yields_the_block():
    # Hypervisors keep the tail of a long console log: BEGIN present, kernel noise gone.
    tail = UBUNTU[UBUNTU.index("<14>Nov 25 10:51:51 ec2: -----END SSH HOST KEY FINGER") :]
    assert kh.extract_host_keys(tail) == [ECDSA, ED25519, RSA]


def test_end_without_begin_is_ignored():
    tail = UBUNTU[UBUNTU.index(ED25519[1]) + 10 :]
    assert kh.extract_host_keys(tail) == []


def test_cut_off_key_line_is_rejected():
    blob = RSA[1][:60]  # valid base64 alphabet, but not a whole key
    text = f"{kh.BEGIN}\r\nssh-rsa {blob} root@x\r\n{ED25519[0]} {ED25519[1]}\r\n{kh.END}\r\n"
    assert kh.extract_host_keys(text) == [ED25519]


def test_type_must_match_the_blob():
    text = f"{kh.BEGIN}\nssh-rsa {ED25519[1]} root@x\n{kh.END}\n"
    assert kh.extract_host_keys(text) == []


def test_block_printed_twice_uses_the_last_one():
    # A rebuilt server prints new keys after the old boot's block in the same log.
    second = (
        f"\r\n[    3.1] reboot: Restarting system\r\n{kh.BEGIN}\r\n"
        f"{OTHER_ED25519[0]} {OTHER_ED25519[1]} root@web-1\r\n{kh.END}\r\n"
    )
    assert kh.extract_host_keys(UBUNTU + second) == [OTHER_ED25519]


def test_same_block_twice_gives_each_key_once():
    assert kh.extract_host_keys(UBUNTU + UBUNTU) == [ECDSA, ED25519, RSA]


def test_prefixed_key_lines_are_read():
    # Some images send the key block through syslog too: every line carries a tag.
    text = "\n".join(
        [
            f"<14>Jan  1 00:00:00 ec2: {kh.BEGIN}",
            f"<14>Jan  1 00:00:00 ec2: {ED25519[0]} {ED25519[1]} root@h",
            f"[   9.1] cloud-init[1]: {ECDSA[0]} {ECDSA[1]}",
            f"<14>Jan  1 00:00:00 ec2: {kh.END}",
        ]
    )
    assert kh.extract_host_keys(text) == [ED25519, ECDSA]


def test_devcloud_fake_driver_console_format():
    # The local cloud's fake hypervisor prints the block the same way (CRLF).
    text = "\r\n".join(
        ["web-1 login: ", kh.BEGIN, f"{ED25519[0]} {ED25519[1]} root@web-1", kh.END, ""]
    )
    assert kh.extract_host_keys(text) == [ED25519]


# --- known_hosts text ------------------------------------------------------------------


def hashed(host: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_rewrite_replaces_only_the_given_addresses():
    old = "\n".join(
        [
            "# my hosts",
            f"10.0.0.5 {RSA[0]} {RSA[1]}",
            f"10.0.0.5,other.example {OTHER_ED25519[0]} {OTHER_ED25519[1]}",
            f"[10.0.0.5]:2222 {RSA[0]} {RSA[1]}",
            f"{hashed('10.0.0.5')} {RSA[0]} {RSA[1]}",
            f"@cert-authority 10.0.0.5 {RSA[0]} {RSA[1]}",
            f"10.0.0.6 {RSA[0]} {RSA[1]}",
        ]
    )
    new = kh.rewrite(old, ["10.0.0.5"], [ED25519])
    assert new.splitlines() == [
        "# my hosts",
        f"other.example {OTHER_ED25519[0]} {OTHER_ED25519[1]}",
        f"[10.0.0.5]:2222 {RSA[0]} {RSA[1]}",  # another port is another host
        f"@cert-authority 10.0.0.5 {RSA[0]} {RSA[1]}",
        f"10.0.0.6 {RSA[0]} {RSA[1]}",
        f"10.0.0.5 {ED25519[0]} {ED25519[1]}",
    ]


def test_rewrite_is_stable():
    once = kh.rewrite("", ["10.0.0.5", "fd00::5"], [ED25519, ECDSA])
    assert kh.rewrite(once, ["10.0.0.5", "fd00::5"], [ED25519, ECDSA]) == once
    assert len(once.splitlines()) == 4


def test_missing_addresses_sees_plain_port22_and_hashed_entries():
    text = "\n".join(
        [
            f"10.0.0.5 {RSA[0]} {RSA[1]}",
            f"[10.0.0.6]:22 {RSA[0]} {RSA[1]}",
            f"{hashed('10.0.0.7')} {RSA[0]} {RSA[1]}",
            f"@revoked 10.0.0.8 {RSA[0]} {RSA[1]}",
            f"[10.0.0.9]:2222 {RSA[0]} {RSA[1]}",
        ]
    )
    addresses = ["10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9"]
    assert kh.missing_addresses(text, addresses) == ["10.0.0.8", "10.0.0.9"]


def test_keys_for_reads_back_the_keys_of_some_hosts():
    text = "\n".join(
        [
            "# a comment",
            f"10.0.0.5,fd00::5 {ED25519[0]} {ED25519[1]} web",
            f"{hashed('10.0.0.5')} {RSA[0]} {RSA[1]}",
            f"@revoked 10.0.0.5 {ECDSA[0]} {ECDSA[1]}",
            f"10.0.0.6 {OTHER_ED25519[0]} {OTHER_ED25519[1]}",
            f"fd00::5 {ED25519[0]} {ED25519[1]}",
            "10.0.0.5 ssh-ed25519 AAAAcut",
        ]
    )
    # Plain and hashed entries count, each key once; revoked and broken lines do not.
    assert kh.keys_for(text, ["10.0.0.5", "fd00::5"]) == [ED25519, RSA]
    assert kh.keys_for(text, ["10.0.0.7"]) == []
    # What `rewrite` wrote for the fixed address is what a floating one gets.
    written = kh.rewrite("", ["10.0.0.9"], [ED25519, ECDSA])
    assert kh.keys_for(written, ["10.0.0.9"]) == [ED25519, ECDSA]


def test_update_file_is_atomic_0600_and_reports_changes(tmp_path):
    path = str(tmp_path / "sub" / "known_hosts")
    assert kh.update_file(path, ["10.0.0.5"], [ED25519, ECDSA], threading.Lock()) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert kh.update_file(path, ["10.0.0.5"], [ED25519, ECDSA]) is False
    os.chmod(path, 0o644)
    assert kh.update_file(path, ["10.0.0.5"], [ED25519]) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert kh.read_text(path) == f"10.0.0.5 {ED25519[0]} {ED25519[1]}\n"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["known_hosts"]  # no temp left


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_openssh_reads_the_written_file(tmp_path):
    path = str(tmp_path / "known_hosts")
    kh.update_file(path, ["192.0.2.10"], kh.extract_host_keys(UBUNTU))
    out = subprocess.run(
        ["ssh-keygen", "-F", "192.0.2.10", "-f", path], capture_output=True, text=True
    )
    assert out.returncode == 0
    entries = [line for line in out.stdout.splitlines() if line.startswith("192.0.2.10 ")]
    assert len(entries) == 3
