"""The manifest language: variables, for_each and environment layers, and what validate
says about secrets it cannot read. Every error is expected at a file:line:column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bootstrap import manifest
from bootstrap.cli import EXIT_ERROR, EXIT_OK, main
from bootstrap.manifest import LoadOptions
from bootstrap.model import Address

REPO = Path(__file__).resolve().parents[2]
TEAMS = REPO / "manifests" / "teams"
SECRET = "Tr0ub4dor&3-lang-never-shown"


def write(folder: Path, text: str, name: str = "m.yaml") -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def load(paths, environ=None, **options):
    paths = [paths] if isinstance(paths, str) else paths
    return manifest.load(paths, environ=environ or {}, options=LoadOptions(**options))


def errors(diags) -> list[str]:
    return [d.format() for d in diags if d.is_error]


def spec(m, kind: str, *key: str) -> dict:
    return m.get(Address(kind, key)).spec


def only_error(diags):
    errs = [d for d in diags if d.is_error]
    assert len(errs) == 1, "\n".join(d.format() for d in diags)
    return errs[0]


# --- variables ---------------------------------------------------------------------------


def test_an_escaped_dollar_is_still_evaluated(tmp_path):
    # A file whose text has no "${" is not walked for ${...}; a YAML escape is the one
    # other way to write it, and it must still be evaluated.
    m, diags = load(write(tmp_path, r"""
        vars:
          who: {type: string, default: acme}
        projects:
          - name: "\x24{var.who}-web"
            description: "plain text"
        """))
    assert diags == [], errors(diags)
    assert spec(m, "projects", "acme-web")["description"] == "plain text"


TYPED = """
vars:
  n: {type: number, default: 2}
  on: {type: boolean, default: false}
  who: {type: string, default: acme}
  extra: {type: map, default: {"hw:cpu_policy": dedicated}}
flavors:
  - name: ${var.who}-${var.n}-${var.on}
    vcpus: ${var.n}
    ram: 512
    disk: 1
    is_public: ${var.on}
    extra_specs: ${var.extra}
"""


def test_a_whole_string_use_keeps_the_type_and_a_partial_use_writes_it_out(tmp_path):
    m, diags = load(write(tmp_path, TYPED))
    assert diags == [], errors(diags)
    (flavor,) = list(m)
    assert flavor.spec["name"] == "acme-2-false"
    assert flavor.spec["vcpus"] == 2 and flavor.spec["is_public"] is False
    assert flavor.spec["extra_specs"] == {"hw:cpu_policy": "dedicated"}
    # Positions stay those of the template.
    assert flavor.field_sources["vcpus"].line == 8


def test_precedence_default_then_environment_then_var_file_then_var(tmp_path):
    path = write(tmp_path, TYPED)
    var_file = write(tmp_path, "n: 4\n", "values.yaml")
    env = {"BOOTSTRAP_VAR_n": "3"}

    def vcpus(**kw) -> int:
        m, diags = load(path, **kw)
        assert not errors(diags)
        return next(iter(m)).spec["vcpus"]

    assert vcpus() == 2
    assert vcpus(environ=env) == 3
    assert vcpus(environ=env, var_files=(var_file,)) == 4
    assert vcpus(environ=env, var_files=(var_file,), var_args=("n=5",)) == 5
    assert vcpus(var_args=("n=5", "n=6")) == 6  # the last --var wins


def test_values_from_the_command_line_are_read_by_the_declared_type(tmp_path):
    path = write(tmp_path, TYPED)
    m, diags = load(path, var_args=("on=true", "who=7", 'extra={"a": "b"}'))
    assert not errors(diags)
    (flavor,) = list(m)
    assert flavor.spec["is_public"] is True and flavor.spec["name"] == "7-2-true"
    assert flavor.spec["extra_specs"] == {"a": "b"}
    _m, diags = load(path, var_args=("n=four",))
    err = only_error(diags)
    assert "variable 'n' is declared number" in err.summary and "gives a string" in err.summary
    assert str(err.source) == "--var n"


def test_a_var_file_of_the_wrong_type_or_name_is_located_in_it(tmp_path):
    path = write(tmp_path, TYPED)
    var_file = write(tmp_path, "who: x\nn: [1]\nnope: 1\n", "values.yaml")
    _m, diags = load(path, var_files=(var_file,))
    shown = errors(diags)
    assert len(shown) == 2, shown
    assert shown[0].startswith(f"{var_file}:2:4: error: variable 'n' is declared number")
    assert shown[1].startswith(f"{var_file}:3:1: error: variable 'nope' is not declared")


def test_undeclared_missing_and_ill_typed_variables_are_located_at_the_use(tmp_path):
    path = write(
        tmp_path,
        """
        vars:
          region: {type: string}
          size: {type: number, default: "big"}
        projects:
          - name: ${var.regoin}
          - name: x-${var.region}
        """,
    )
    _m, diags = load(path)
    assert errors(diags) == [
        f"{path}:3:33: error: variable 'size' is declared number but its default is a string",
        f"{path}:5:11: error: variable 'regoin' is not declared in any vars: block "
        "(declared: region, size)",
        f"{path}:6:11: error: variable 'region' has no value (declared at {path}:2:3 without a "
        "default): give it with --var region=..., a --var-file or BOOTSTRAP_VAR_region",
    ]


def test_a_cycle_through_variable_defaults_is_one_located_error(tmp_path):
    path = write(
        tmp_path,
        """
        vars:
          a: {type: string, default: "${var.b}"}
          b: {type: string, default: "x-${var.c}"}
          c: {type: string, default: "${var.a}"}
          d: {type: string, default: "${var.c}-d"}
        projects:
          - name: ${var.d}
        """,
    )
    _m, diags = load(path)
    err = only_error(diags)
    cycle = "var.a -> var.b -> var.c -> var.a"
    assert err.summary == f"variables refer to each other in a cycle: {cycle}"
    assert (err.source.line, err.source.column) == (4, 30)  # where c uses a


def test_defaults_may_use_other_variables(tmp_path):
    path = write(
        tmp_path,
        """
        vars:
          org: {type: string, default: acme}
          project: {type: string, default: "${var.org}-prod"}
        projects:
          - name: ${var.project}
        """,
    )
    m, diags = load(path, var_args=("org=umbrella",))
    assert not diags and spec(m, "projects", "umbrella-prod")


def test_a_list_inside_a_longer_string_and_unknown_expressions_are_errors(tmp_path):
    path = write(
        tmp_path,
        """
        vars:
          tags: {type: list, default: [a, b]}
        projects:
          - name: p-${var.tags}
          - name: ${vars.tags}
          - name: "$${not.evaluated}"
        """,
    )
    m, diags = load(path)
    shown = errors(diags)
    assert len(shown) == 2, shown
    assert shown[0].startswith(f"{path}:4:11: error: ${{var.tags}} is a list")
    assert shown[1].startswith(f"{path}:5:11: error: unknown expression ${{vars.tags}}")
    assert m.get(Address("projects", ("${not.evaluated}",))) is not None


# --- for_each ----------------------------------------------------------------------------


def test_for_each_over_a_map_a_list_and_a_list_of_maps(tmp_path):
    path = write(
        tmp_path,
        """
        vars:
          teams:
            type: map
            default:
              red: {size: 2}
              blue: {size: 3}
        projects:
          - for_each: ${var.teams}
            name: ${each.key}
            description: "${each.key} has ${each.value.size}"
        groups:
          - for_each: [ops, dev]
            name: g-${each.value}
        users:
          - for_each: [{name: ann, mail: ann@x.example}, {name: bob, mail: bob@x.example}]
            name: ${each.key}
            email: ${each.value.mail}
        """,
    )
    m, diags = load(path)
    assert not errors(diags), errors(diags)
    assert spec(m, "projects", "red")["description"] == "red has 2"
    assert spec(m, "projects", "blue")["description"] == "blue has 3"
    assert spec(m, "groups", "g-ops") and spec(m, "groups", "g-dev")
    assert spec(m, "users", "bob")["email"] == "bob@x.example"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ('"${var.n}"', "for_each needs a list or a map, got a number"),
        ("just-a-string", "for_each needs a list or a map, got a string"),
        ("[a, b, a]", "for_each makes two resources for the key 'a' (first from"),
        ("[{size: 1}]", "for_each over a list of maps: each item needs a name"),
    ],
)
def test_for_each_over_what_is_not_a_collection_of_keys_is_located(tmp_path, over, message):
    path = write(
        tmp_path,
        f"""
        vars:
          n: {{type: number, default: 3}}
        projects:
          - for_each: {over}
            name: p-${{each.key}}
        """,
    )
    _m, diags = load(path)
    err = only_error(diags)
    assert message in err.summary
    assert err.source.file == path and err.source.line == 4


def test_each_outside_for_each_and_a_missing_field_are_located(tmp_path):
    path = write(
        tmp_path,
        """
        projects:
          - name: ${each.key}
          - for_each: {a: {size: 1}}
            name: ${each.key}
            description: ${each.value.colour}
        """,
    )
    _m, diags = load(path)
    assert errors(diags) == [
        f"{path}:2:11: error: ${{each.key}} is used outside a resource with for_each",
        f"{path}:5:18: error: each.value has no field 'colour' (it has: size) "
        "(for_each item 'a')",
    ]


def test_a_problem_in_a_stamped_resource_points_at_the_template_and_names_the_item(tmp_path):
    path = write(
        tmp_path,
        """
        vars:
          sizes: {type: map, default: {small: 1, huge: -4}}
        flavors:
          - for_each: ${var.sizes}
            name: f-${each.key}
            vcpus: ${each.value}
            ram: 512
            disk: 1
        """,
    )
    _m, diags = load(path)
    err = only_error(diags)
    assert (err.source.file, err.source.line, err.source.column) == (path, 6, 12)
    assert "(for_each item 'huge')" in err.summary and err.address == "flavors.f-huge"


# --- environments ------------------------------------------------------------------------


BASE = """
stack: shop
projects:
  - name: shop
    description: the shop
    tags: [a, b]
  - name: old
flavors:
  - name: m1
    vcpus: 1
    ram: 512
    disk: 1
    extra_specs: {"hw:a": "1", "hw:b": "2"}
"""


def test_an_environment_overrides_fields_merges_maps_replaces_lists_and_removes(tmp_path):
    base = write(tmp_path / "base", BASE)
    env = write(
        tmp_path / "prod",
        """
        stack: shop-prod
        projects:
          - name: shop
            tags: [prod]
          - name: old
            state: absent
          - name: new
        flavors:
          - name: m1
            extra_specs: {"hw:b": "3"}
        """,
    )
    m, diags = load(base, env=(env,))
    assert diags == [], errors(diags)
    shop = m.get(Address("projects", ("shop",)))
    assert shop.spec == {"name": "shop", "description": "the shop", "tags": ["prod"]}
    assert shop.field_sources["tags"].file == env  # the value's own file and line
    assert shop.field_sources["description"].file == base
    assert m.get(Address("projects", ("old",))).state == "absent"
    assert m.get(Address("projects", ("new",))) is not None
    assert spec(m, "flavors", "m1")["extra_specs"] == {"hw:a": "1", "hw:b": "3"}
    assert m.stack == "shop-prod"


def test_a_file_an_environment_names_is_read_next_to_the_environment(tmp_path):
    base = write(tmp_path / "base", "users: [{name: bob, password: {file: pw}}]\n")
    env = write(tmp_path / "prod", "users: [{name: bob, password: {file: pw}}]\n")
    (tmp_path / "base" / "pw").write_text("base-secret\n")
    (tmp_path / "prod" / "pw").write_text("prod-secret\n")
    m, diags = load(base, env=(env,))
    assert diags == [], errors(diags)
    assert spec(m, "users", "bob")["password"].reveal() == "prod-secret"


def test_two_files_of_one_environment_changing_one_resource_conflict(tmp_path):
    base = write(tmp_path / "base", BASE)
    write(tmp_path / "prod", "projects: [{name: shop, tags: [x]}]\n", "a.yaml")
    second = write(tmp_path / "prod", "projects:\n  - name: shop\n    tags: [y]\n", "b.yaml")
    _m, diags = load(base, env=(str(tmp_path / "prod"),))
    err = only_error(diags)
    assert (err.source.file, err.source.line, err.source.column) == (second, 2, 5)
    assert "two files of one environment change the same projects resource" in err.summary
    assert str(tmp_path / "prod" / "a.yaml") + ":1:12" in err.summary


def test_an_error_brought_by_an_environment_is_located_in_its_file(tmp_path):
    base = write(tmp_path / "base", BASE)
    env = write(tmp_path / "prod", "flavors:\n  - name: m1\n    vcpus: many\n")
    _m, diags = load(base, env=(env,))
    err = only_error(diags)
    assert (err.source.file, err.source.line) == (env, 3)


def test_an_environment_may_change_a_variable_default_but_not_its_type(tmp_path):
    base = write(
        tmp_path / "base",
        "vars:\n  env: {type: string, default: dev}\nprojects: [{name: 'p-${var.env}'}]\n",
    )
    env = write(tmp_path / "prod", "vars:\n  env: {type: string, default: prod}\n")
    m, diags = load(base, env=(env,))
    assert not diags and spec(m, "projects", "p-prod")
    m, diags = load(base, env=(env,), var_args=("env=qa",))
    assert not diags and spec(m, "projects", "p-qa")
    bad = write(tmp_path / "bad", "vars:\n  env: {type: number, default: 1}\n")
    _m, diags = load(base, env=(bad,))
    err = only_error(diags)
    assert "variable 'env' is number here but string at" in err.summary


# --- the teams example -------------------------------------------------------------------


@pytest.mark.parametrize("environment", [None, "staging", "prod"])
def test_the_teams_example_validates_offline_in_each_environment(environment):
    env = (str(TEAMS / "env" / environment),) if environment else ()
    m, diags = load(str(TEAMS / "base"), env=env, var_args=("prefix=t-",))
    assert diags == [], errors(diags)
    names = {r.address.name for r in m if r.kind == "projects"}
    expected = {
        None: {"t-alpha", "t-bravo", "t-charlie", "t-playground"},
        "staging": {"t-alpha", "t-bravo", "t-charlie", "t-playground"},
        "prod": {"t-alpha", "t-bravo", "t-delta", "t-playground"},
    }[environment]
    assert names == expected
    assert m.stack == f"t-teams-{environment or 'dev'}"


def test_fifty_teams_fit_on_one_screen(tmp_path):
    teams = "\n".join(f"      team-{i:02}: {{instances: {i + 1}}}" for i in range(50))
    text = f"""
vars:
  teams:
    type: map
    default:
{teams}
roles: [{{name: member, managed: false}}]
projects:
  - for_each: ${{var.teams}}
    name: ${{each.key}}
groups:
  - for_each: ${{var.teams}}
    name: ${{each.key}}-members
role_assignments:
  - for_each: ${{var.teams}}
    role: member
    group: ${{each.key}}-members
    project: ${{each.key}}
quotas:
  - for_each: ${{var.teams}}
    project: ${{each.key}}
    compute: {{instances: "${{each.value.instances}}"}}
"""
    template = text.split("roles:")[1]
    assert len(template.strip().splitlines()) <= 20
    m, diags = load(write(tmp_path, text))
    assert diags == [], errors(diags)
    assert len(m) == 1 + 50 * 4
    assert spec(m, "quotas", "team-41")["compute"] == {"instances": 42}


# --- secrets offline ---------------------------------------------------------------------

SECRETS = """
projects: [{name: acme}]
users:
  - {name: bob, password: {env: LANG_TEST_PASSWORD}}
  - {name: eve, password: {file: missing-password}}
"""


def test_validate_warns_about_missing_secrets_and_errors_when_required(tmp_path, capsys):
    path = write(tmp_path, SECRETS)
    assert main(["validate", path]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{path}:3:33: warning: environment variable 'LANG_TEST_PASSWORD' is not set" in out
    assert f"{path}:4:34: warning: secret file 'missing-password' not found" in out
    assert main(["validate", "--require-secrets", path]) == EXIT_ERROR
    out = capsys.readouterr().out
    assert f"{path}:3:33: error: environment variable 'LANG_TEST_PASSWORD' is not set" in out
    assert f"{path}:4:34: error: file not found: 'missing-password'" in out


def test_plan_needs_the_secrets_before_connecting(tmp_path, capsys):
    path = write(tmp_path, SECRETS)
    assert main(["plan", "--cloud", "no-such-cloud", path]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "error: environment variable 'LANG_TEST_PASSWORD' is not set" in err
    assert "nothing was read or changed in the cloud" in err


def test_a_secret_that_is_there_is_never_printed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LANG_TEST_PASSWORD", SECRET)
    (tmp_path / "missing-password").write_text(SECRET + "-file\n")
    path = write(tmp_path, SECRETS + "  - {name: mal, password: 7}\n")
    assert main(["validate", "--require-secrets", path]) == EXIT_ERROR
    assert SECRET not in capsys.readouterr().out


def test_the_command_line_passes_variables_and_environments(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BOOTSTRAP_VAR_prefix", "env-")
    values = write(tmp_path, "env: from-file\n", "values.yaml")
    args = ["graph", str(TEAMS / "base"), "--env", str(TEAMS / "env" / "prod")]
    assert main([*args, "--var-file", values, "--var", "prefix=cli-"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "projects.cli-delta" in out and "projects.cli-charlie" not in out
    assert main(["validate", str(TEAMS / "base"), "--var", "nope=1"]) == EXIT_ERROR
    assert "variable 'nope' is not declared" in capsys.readouterr().out


def test_a_saved_plan_reloads_its_environment_and_variables(tmp_path, monkeypatch):
    from bootstrap import engine
    from bootstrap.cloud import Cloud
    from tests.unit.fakes import MemoryCloud, fake_drivers

    cloud = MemoryCloud()
    cloud.store["domains"]["default"] = {"name": "Default"}
    monkeypatch.setattr(Cloud, "connect", classmethod(lambda cls, *a, **k: cloud))
    monkeypatch.setattr(engine, "instantiate_drivers", fake_drivers)
    base = write(
        tmp_path / "base",
        "vars:\n  who: {type: string}\nprojects:\n  - name: ${var.who}\n    description: b\n",
    )
    env = write(tmp_path / "prod", "projects:\n  - name: ${var.who}\n    description: prod\n")
    saved = tmp_path / "plan.json"
    assert main(["plan", base, "--env", env, "--var", "who=acme", "--out", str(saved)]) == 0
    assert main(["apply", str(saved)]) == EXIT_OK
    projects = [(p["name"], p.get("description")) for p in cloud.store["projects"].values()]
    assert projects == [("acme", "prod")]
