"""What an operator sees when the credentials or the cloud are wrong: one clear line.

The CLI runs as a subprocess, with a copy of the local cloud's clouds.yaml whose password
is wrong or whose auth_url points at a port nothing listens on. Nothing is written.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.integration.engine_util import clouds_yaml

MANIFEST = """\
version: 1
projects: [{name: admin}]
networks: [{name: public, project: admin, managed: false}]
roles: [{name: member}]
"""


def run_cli(tmp_path: Path, config: dict, *args: str) -> tuple[int, str, float]:
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump(config))
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(path)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bootstrap", "plan", str(manifest), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.stdout == ""
    return proc.returncode, proc.stderr, time.monotonic() - start


def devcloud_config() -> dict:
    return yaml.safe_load(Path(clouds_yaml()).read_text())


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wrong_password_names_user_project_url_and_status(tmp_path, devcloud_clouds_yaml):
    config = devcloud_config()
    config["clouds"]["devcloud"]["auth"]["password"] = "wrong-" + os.urandom(4).hex()
    auth_url = config["clouds"]["devcloud"]["auth"]["auth_url"]
    rc, err, _ = run_cli(tmp_path, config, "--cloud", "devcloud")
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one error, not one per kind read
    (line,) = lines
    assert line.startswith("error: authentication failed for user 'admin'")
    assert "project 'admin'" in line and "domain 'Default'" in line
    assert auth_url in line and "(cloud 'devcloud')" in line
    assert "HTTP 401" in line
    assert "--cloud NAME or OS_CLOUD" in line
    assert "wrong-" not in line and "domains:" not in line


def test_unreachable_cloud_is_one_line_naming_the_endpoint(tmp_path, devcloud_clouds_yaml):
    config = devcloud_config()
    url = f"http://127.0.0.1:{unused_port()}/v3"
    config["clouds"]["devcloud"]["auth"]["auth_url"] = url
    rc, err, elapsed = run_cli(tmp_path, config, "--cloud", "devcloud")
    assert rc == 1
    assert err.strip().splitlines() == [
        f"error: cannot reach the identity service at {url} (cloud 'devcloud'): connection "
        "refused. Is the cloud up and its auth_url right? To use another cloud: "
        "--cloud NAME or OS_CLOUD=NAME."
    ], err
    # No retries of a refused connection (it took 9 s): measured 2-3 s, mostly imports.
    assert elapsed < 30, elapsed


def test_no_cloud_selected_explains_how_to_select_one(tmp_path, devcloud_clouds_yaml):
    rc, err, _ = run_cli(tmp_path, devcloud_config())
    assert rc == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("error: no cloud selected: pass --cloud NAME or set OS_CLOUD=NAME")
    assert "~/.config/openstack/clouds.yaml" in line and "OS_CLIENT_CONFIG_FILE" in line
    assert f"clouds in {tmp_path / 'clouds.yaml'}: devcloud, devcloud-demo" in line


