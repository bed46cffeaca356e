"""Credentials other than a project-scoped password: application credentials and a
system-scoped token, loaded from clouds.yaml by openstacksdk's config loader as usual."""

from __future__ import annotations

import yaml

from bootstrap import cli
from tests.integration.engine_util import connect, write_manifest


def clouds_file(tmp_path, devcloud_clouds_yaml, name, auth_type, auth):
    base = yaml.safe_load(devcloud_clouds_yaml.read_text())["clouds"]["devcloud"]
    entry = {k: v for k, v in base.items() if k not in ("auth", "auth_type")}
    entry.update(auth_type=auth_type, auth=auth)
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {name: entry}}))
    return path, base["auth"]


def plan_exit(path, manifest, cloud, monkeypatch, capsys):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    capsys.readouterr()
    code = cli.main(["plan", manifest, "--cloud", cloud, "--detailed-exitcode"])
    return code, capsys.readouterr()


def test_application_credential(tmp_path, devcloud_clouds_yaml, unique_name, monkeypatch, capsys):
    ks = connect().keystone
    user_id = connect().user_id
    cred = ks.application_credentials.create(name=f"{unique_name}cred", user=user_id)
    try:
        path, base = clouds_file(
            tmp_path,
            devcloud_clouds_yaml,
            "appcred",
            "v3applicationcredential",
            {
                "auth_url": None,
                "application_credential_id": cred.id,
                "application_credential_secret": cred.secret,
            },
        )
        doc = yaml.safe_load(path.read_text())
        doc["clouds"]["appcred"]["auth"]["auth_url"] = base["auth_url"]
        path.write_text(yaml.safe_dump(doc))
        manifest = write_manifest(tmp_path, f"roles:\n  - name: {unique_name}r\n")
        code, out = plan_exit(path, manifest, "appcred", monkeypatch, capsys)
        assert code == cli.EXIT_CHANGES, out
        assert f"+ roles.{unique_name}r" in out.out
        assert cred.secret not in out.out + out.err
    finally:
        ks.application_credentials.delete(cred.id, user=user_id)


def test_system_scope(tmp_path, devcloud_clouds_yaml, unique_name, monkeypatch, capsys):
    path, base = clouds_file(tmp_path, devcloud_clouds_yaml, "system", "password", {})
    auth = {k: v for k, v in base.items() if not k.startswith("project_")}
    auth["system_scope"] = "all"
    doc = yaml.safe_load(path.read_text())
    doc["clouds"]["system"]["auth"] = auth
    path.write_text(yaml.safe_dump(doc))
    manifest = write_manifest(tmp_path, "projects:\n  - name: admin\nroles:\n  - name: member\n")
    from bootstrap.cloud import Cloud

    code, out = plan_exit(path, manifest, "system", monkeypatch, capsys)
    assert code == cli.EXIT_OK, out
    assert Cloud.connect("system").access.system_scoped
    assert "No changes" in out.out
