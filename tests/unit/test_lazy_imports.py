"""A plan imports the client library of a service only when a kind of that service is in
the manifest. Each check runs in a fresh interpreter (sys.modules of the test run is
full already): the real Cloud.connect from a clouds.yaml, the drivers, the manifest
load, and the clients the engine builds before the reads (no request is sent)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from bootstrap import engine
    from bootstrap.cloud import Cloud

    loaded = engine.load([sys.argv[1]])
    drivers = engine.instantiate_drivers()
    kinds = engine.kinds_to_read(loaded.manifest, drivers, prune=False)
    cloud = Cloud.connect("lazy", config_files=[sys.argv[2]])
    clients = engine.clients_of(drivers, kinds)
    cloud.prepare(clients)
    heavy = ("novaclient", "glanceclient", "openstack.network", "openstack.compute",
             "openstack.connection", "keystoneclient")
    loaded_heavy = sorted({h for h in heavy for m in sys.modules
                           if m == h or m.startswith(h + ".")})
    import openstack
    complete = "connect" in vars(openstack)
    # Someone else's use of the whole SDK later in the same process still works.
    late = callable(openstack.connect) and openstack.connection.Connection is not None
    print(json.dumps({"clients": clients, "imported": loaded_heavy,
                      "sdk_complete": complete, "late_access": late}))
    """
)

CLOUDS = """clouds:
  lazy:
    auth:
      auth_url: http://127.0.0.1:9/v3
      username: nobody
      password: unused
      project_name: none
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
"""


def run(tmp_path, manifest: str) -> dict:
    (tmp_path / "m.yaml").write_text(manifest)
    (tmp_path / "clouds.yaml").write_text(CLOUDS)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "m.yaml"), str(tmp_path / "clouds.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_identity_plan_imports_no_compute_image_or_network_library(tmp_path):
    got = run(
        tmp_path,
        "projects:\n  - name: p\nusers:\n  - name: u\n    default_project: p\n"
        "role_assignments:\n  - {role: member, user: u, project: p}\n"
        "roles:\n  - name: member\n",
    )
    # Keystone is read as JSON on the session: keystoneclient is the writes' client.
    assert got["clients"] == ["identity"]
    assert got["imported"] == []
    assert got["sdk_complete"] is False  # the SDK's __init__ (every proxy) never ran
    assert got["late_access"] is True


def test_a_network_kind_brings_the_whole_sdk(tmp_path):
    got = run(tmp_path, "networks:\n  - name: n\n    project: p\nprojects:\n  - name: p\n")
    assert "sdk" in got["clients"]
    assert {"openstack.network", "openstack.connection"} <= set(got["imported"])
    assert "novaclient" not in got["imported"] and "glanceclient" not in got["imported"]
    assert got["sdk_complete"] is True
