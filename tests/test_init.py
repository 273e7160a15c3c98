"""``rotator init``: a commented starter policy for the adapters named, which validates as printed.

Every registered adapter declares an example of its fields; a starter using
it loads with the real loader and passes ``rotator validate``. Unknown
adapters and bad names are refused (exit 2) with nothing written; an
example that does not validate is a bug (exit 1).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner, Result

from rotator.adapters.discovery import Registry, registry
from rotator.cli import init as init_command
from rotator.cli.main import cli
from rotator.output.files import create_file
from rotator.policy.loader import load_policies
from tests.conftest import restored_logging

ROOT = Path(__file__).resolve().parent.parent

#: Every registered adapter, by role (the registry's table) and name.
ADAPTERS = [
    (table, name)
    for table in ("stores", "issuers", "targets", "verifiers", "notifiers")
    for name in sorted(getattr(registry(), table))
]

#: The options that put an adapter of each role into a starter (with a store around it).
OPTION = {
    "stores": "--store",
    "issuers": "--issuer",
    "targets": "--target",
    "verifiers": "--verify",
    "notifiers": "--notifier",
}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Give the logging set-up back after a command configured it for the runner's streams."""
    with restored_logging():
        yield


def _init(*args: str) -> Result:
    return CliRunner().invoke(cli, ["init", *args])


def _starter_args(table: str, name: str) -> list[str]:
    """Return the options of a starter using the adapter, with a store around it if needed."""
    args = [OPTION[table], name]
    return args if table == "stores" else ["--store", "aws-secretsmanager", *args]


def _adapter(table: str, name: str) -> Any:
    return getattr(registry(), table)[name]


def _slug(heading: str) -> str:
    """Return the anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# -------------------------------------------------------------- the examples


def test_every_provider_entry_point_is_covered() -> None:
    """The adapters of pyproject's rotator.providers group are all loaded, so all tested here."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["rotator.providers"]
    assert len(declared) == 23
    assert {f"{table.removesuffix('s')}.{name}" for table, name in ADAPTERS} == set(declared)


@pytest.mark.parametrize(("table", "name"), ADAPTERS)
def test_every_adapter_gives_an_example_its_config_accepts(table: str, name: str) -> None:
    """The example sets every required field, validates alone, and names no credential."""
    adapter = _adapter(table, name)
    example = dict(adapter.example)
    assert example, f"{name} gives no example"
    required = {f for f, info in adapter.Config.model_fields.items() if info.is_required()}
    assert required <= example.keys()
    adapter.Config.model_validate(example)
    for field, value in example.items():
        if field.endswith("_env"):
            # a credential is named by the variable that holds it, never written
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", str(value)), (field, value)


@pytest.mark.parametrize(("table", "name"), ADAPTERS)
def test_every_adapter_names_a_page_of_the_repository_that_explains_it(
    table: str, name: str
) -> None:
    """Its docs are a file of the repository, and the anchor one of that file's headings."""
    docs = _adapter(table, name).docs
    page, _, anchor = docs.partition("#")
    assert (ROOT / page).is_file(), docs
    headings = [
        _slug(line.lstrip("#"))
        for line in (ROOT / page).read_text().splitlines()
        if line.startswith("#")
    ]
    assert not anchor or anchor in headings, docs


# -------------------------------------------------------------- the starter


@pytest.mark.parametrize(("table", "name"), ADAPTERS)
def test_a_starter_with_each_adapter_passes_validate(tmp_path: Path, table: str, name: str) -> None:
    """rotator validate accepts the starter as written, and the block holds the example."""
    policy = tmp_path / "starter.yaml"
    made = _init(*_starter_args(table, name), "--output", str(policy))
    assert made.exit_code == 0, made.output
    assert made.stdout == ""
    checked = CliRunner().invoke(
        cli,
        [
            "validate",
            "--config",
            str(policy),
            "--state",
            f"sqlite:///{tmp_path / 'j.db'}",
            "--log-format",
            "json",
        ],
    )
    assert checked.exit_code == 0, checked.output
    assert "1 policies in 1 file(s) are valid" in checked.stdout
    [loaded] = load_policies(policy)
    config = _adapter(table, name).Config.model_validate(dict(_adapter(table, name).example))
    blocks = {
        "stores": [loaded.store],
        "issuers": [loaded.issuer],
        "targets": list(loaded.targets),
        "verifiers": list(loaded.verify),
        "notifiers": list(load_policies(policy).notifiers.values()),
    }[table]
    assert [block.config for block in blocks] == [config]


@pytest.mark.parametrize(("table", "name"), ADAPTERS)
def test_the_optional_fields_listed_are_real_and_valid_at_their_defaults(
    table: str, name: str, tmp_path: Path
) -> None:
    """Uncommenting every ``# field: value`` line of the body still validates, and changes nothing.

    So each line the starter lists as an optional field is a field of its
    block, written as the policy would write its default.
    """
    made = _init(*_starter_args(table, name))
    assert made.exit_code == 0, made.output
    optional = re.compile(r"^(\s+)# ([a-z_]+: .*)$")
    listed = [line for line in made.stdout.splitlines() if optional.match(line)]
    assert listed, "no optional field listed"
    uncommented = "\n".join(optional.sub(r"\1\2", line) for line in made.stdout.splitlines())
    (tmp_path / "as-printed.yaml").write_text(made.stdout)
    (tmp_path / "uncommented.yaml").write_text(uncommented)
    [printed] = load_policies(tmp_path / "as-printed.yaml")
    [expanded] = load_policies(tmp_path / "uncommented.yaml")
    assert expanded.model_dump(exclude={"source_file"}) == printed.model_dump(
        exclude={"source_file"}
    )


def test_the_starter_is_commented_for_a_newcomer() -> None:
    """A header with the next commands, each block's docs, its optional fields, the policy's own."""
    made = _init(
        "--store",
        "aws-secretsmanager",
        "--target",
        "kubernetes-secret",
        "--verify",
        "http",
        "--notifier",
        "slack",
        "--name",
        "payments/db",
    )
    assert made.exit_code == 0, made.output
    text = made.stdout
    for command in (
        "rotator validate --config FILE",
        "rotator plan --config FILE",
        "rotator check --config FILE payments/db",
        "rotator rotate --config FILE payments/db",
    ):
        assert f"#   {command} " in text, command
    assert "# its fields: docs/policies.md#stores-storeprovider" in text
    assert "# its fields: docs/notifiers.md#slack" in text
    assert "      # field: null\n" in text  # the store's optional field, unset by default
    assert "        # create: true\n" in text  # the Kubernetes target's
    assert "*_env fields" in text
    document = yaml.safe_load(text)
    [secret] = document["secrets"]
    assert secret["schedule"] == {"every": "30d"} and secret["grace"] == "1h"
    assert secret["owner"] and secret["labels"] == {"env": "prod"}
    assert secret["alerts"] == ["slack"]
    assert document["notifiers"] == {"slack": {"kind": "slack", "url_env": "SLACK_WEBHOOK_URL"}}
    assert secret["targets"][0]["restart"] == ["deployment/app-api"]
    # the newcomer reads more comment than policy: each block and field is explained
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) > 20


def test_a_store_as_a_target_is_a_replica() -> None:
    """--target naming a store provider writes a `provider:` block (a replica), said so."""
    made = _init("--store", "aws-secretsmanager", "--target", "vault-kv")
    assert made.exit_code == 0, made.output
    [target] = yaml.safe_load(made.stdout)["secrets"][0]["targets"]
    assert target["provider"] == "vault-kv" and "kind" not in target
    assert "# replica vault-kv:" in made.stdout


def test_issuer_kinds_that_report_last_use_list_when_old_still_used() -> None:
    """when_old_still_used is offered only where the issuer can tell the old key is used."""
    with_use = _init("--store", "aws-secretsmanager", "--issuer", "aws-iam-access-key")
    without = _init("--store", "aws-secretsmanager")
    assert "# when_old_still_used: extend" in with_use.stdout
    assert "when_old_still_used" not in without.stdout


# -------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("option", "typo", "meant"),
    [
        ("--store", "aws-secretmanager", "aws-secretsmanager"),
        ("--issuer", "vault-tokn", "vault-token"),
        ("--target", "kubernetes-secrt", "kubernetes-secret"),
        ("--target", "vault-k", "vault-kv"),  # a store, as a replica
        ("--verify", "htp", "http"),
        ("--notifier", "slak", "slack"),
    ],
)
def test_an_unknown_kind_is_refused_with_a_suggestion(
    option: str, typo: str, meant: str, tmp_path: Path
) -> None:
    """Exit 2, did-you-mean and every known name; nothing printed or written."""
    out = tmp_path / "p.yaml"
    args = [option, typo] if option == "--store" else ["--store", "vault-kv", option, typo]
    result = _init(*args, "--output", str(out))
    assert result.exit_code == 2
    assert f"did you mean '{meant}'?" in result.stderr
    assert "known: " in result.stderr and meant in result.stderr.split("known: ")[1]
    assert result.stdout == "" and not out.exists()


def test_without_a_store_the_known_stores_are_listed() -> None:
    """--store is needed; the error lists the stores installed."""
    result = _init()
    assert result.exit_code == 2
    assert "--store is needed" in result.stderr
    assert "aws-secretsmanager, azure-keyvault, vault-kv" in result.stderr


def test_an_adapter_asked_for_twice_is_refused() -> None:
    """Two blocks of one kind would be one place twice: exit 2, saying so."""
    result = _init("--store", "vault-kv", "--target", "file", "--target", "file")
    assert result.exit_code == 2
    assert "--target file is given twice" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "name", ['db"pass', "app: db", "app\ndb", "it's", "#comment", "App/DB", "a b", ""]
)
def test_a_hostile_name_is_refused_clearly(name: str, tmp_path: Path) -> None:
    """A name no policy may have: exit 2 naming --name and the rule; nothing written."""
    out = tmp_path / "p.yaml"
    result = _init("--store", "vault-kv", "--name", name, "--output", str(out))
    assert result.exit_code == 2
    assert "--name" in result.stderr and "lowercase letters" in result.stderr
    assert "\n" not in result.stderr.strip()  # one line, the name's newline escaped
    assert result.stdout == "" and not out.exists()


@pytest.mark.parametrize(
    "name", ["null", "yes", "on", "123", "1.5", "0x1f", "0600", "2024-01-01", "1e3", "true"]
)
def test_a_name_yaml_would_read_as_another_type_stays_that_string(
    name: str, tmp_path: Path
) -> None:
    """PyYAML quotes what plain YAML would read as null, a bool, a number or a date."""
    result = _init("--store", "vault-kv", "--name", name)
    assert result.exit_code == 0, result.output
    (tmp_path / "p.yaml").write_text(result.stdout)
    [policy] = load_policies(tmp_path / "p.yaml")
    assert policy.name == name


def test_an_output_path_with_a_line_break_stays_inside_its_comment(tmp_path: Path) -> None:
    """The header names the file; a newline in its name cannot end the comment."""
    out = tmp_path / "odd\nname: [x.yaml"
    result = _init("--store", "vault-kv", "--output", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "odd\\nname" in text
    [policy] = load_policies(out)
    assert policy.name == "app/credential"


# -------------------------------------------------------------- writing


def test_output_refuses_to_overwrite_a_file(tmp_path: Path) -> None:
    """--output naming an existing file: exit 2, the file as it was."""
    out = tmp_path / "p.yaml"
    out.write_text("mine\n")
    result = _init("--store", "vault-kv", "--output", str(out))
    assert result.exit_code == 2
    assert "exists" in result.stderr and "nothing was written" in result.stderr
    assert out.read_text() == "mine\n"
    assert result.stdout == ""


def test_output_refuses_a_dangling_link(tmp_path: Path) -> None:
    """A link to nowhere is something at that name too: not written through."""
    out = tmp_path / "p.yaml"
    out.symlink_to(tmp_path / "elsewhere.yaml")
    result = _init("--store", "vault-kv", "--output", str(out))
    assert result.exit_code == 2
    assert not (tmp_path / "elsewhere.yaml").exists()


def test_output_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    """A directory that does not exist: exit 2, saying why, nothing created."""
    out = tmp_path / "nowhere" / "p.yaml"
    result = _init("--store", "vault-kv", "--output", str(out))
    assert result.exit_code == 2
    assert "its folder" in result.stderr and "mkdir -p" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_create_file_never_overwrites_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A file that appeared after the check is kept: FileExistsError, and the directory clean."""
    target = tmp_path / "p.yaml"
    create_file(target, "first\n")
    assert target.read_text() == "first\n"
    with pytest.raises(FileExistsError):
        create_file(target, "second\n")
    assert target.read_text() == "first\n"
    assert sorted(os.listdir(tmp_path)) == ["p.yaml"]


def test_the_written_file_is_what_stdout_shows(tmp_path: Path) -> None:
    """--output writes the same document init prints, and says where on stderr."""
    out = tmp_path / "p.yaml"
    written = _init("--store", "vault-kv", "--output", str(out))
    printed = _init("--store", "vault-kv")
    assert written.exit_code == printed.exit_code == 0
    assert out.read_text() == printed.stdout.replace("--config FILE", f"--config {out}")
    assert str(out) in written.stderr


def test_init_changes_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No journal, no policy read: a broken ROTATOR_CONFIG does not matter; only --output is new."""
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("secrets: [\n")
    runner = CliRunner(env={"ROTATOR_CONFIG": str(broken)})
    printed = runner.invoke(cli, ["init", "--store", "vault-kv"])
    written = runner.invoke(cli, ["init", "--store", "vault-kv", "-o", "p.yaml"])
    assert printed.exit_code == written.exit_code == 0, printed.output + written.output
    assert sorted(os.listdir(tmp_path)) == ["broken.yaml", "p.yaml"]


# -------------------------------------------------------------- what is not the operator's fault


def _with_store(monkeypatch: pytest.MonkeyPatch, store: type[Any]) -> None:
    """Make init see the installed adapters plus ``store`` as the store ``acme``."""
    base = registry()
    found = Registry(
        {**base.stores, "acme": store},
        base.issuers,
        base.targets,
        base.verifiers,
        base.notifiers,
    )
    monkeypatch.setattr(init_command, "registry", lambda: found)


def test_an_example_its_config_refuses_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 1 (not the operator's fault), naming the adapter and the field; nothing printed."""
    base: Any = registry().stores["aws-secretsmanager"]

    class Broken(base):  # type: ignore[misc, valid-type]
        example: ClassVar[Mapping[str, object]] = {"secret_id": ""}

    _with_store(monkeypatch, Broken)
    result = _init("--store", "acme")
    assert result.exit_code == 1
    assert "a bug" in result.stderr and "store acme" in result.stderr
    assert "secret_id" in result.stderr and result.stdout == ""


def test_an_adapter_without_an_example_is_refused_as_a_bug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A third-party adapter written before examples: exit 1, saying it gives none."""
    base: Any = registry().stores["aws-secretsmanager"]

    class Bare(base):  # type: ignore[misc, valid-type]
        example: ClassVar[Mapping[str, object]] = {}

    _with_store(monkeypatch, Bare)
    result = _init("--store", "acme")
    assert result.exit_code == 1
    assert "gives no example" in result.stderr


def test_adapters_the_loader_refuses_together_are_refused_with_its_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A store whose SDK is missing: the loader's located problem, exit 2, nothing written."""
    base: Any = registry().stores["aws-secretsmanager"]

    class Unavailable(base):  # type: ignore[misc, valid-type]
        requires = ("rotator-test-no-such-distribution",)

    _with_store(monkeypatch, Unavailable)
    out = tmp_path / "p.yaml"
    result = _init("--store", "acme", "--output", str(out))
    assert result.exit_code == 2
    assert re.search(
        rf"^{re.escape(str(out))}:\d+:\d+: secrets\[0\]\.store\.provider: provider 'acme' "
        r"needs rotator-test-no-such-distribution",
        result.stderr,
        re.M,
    ), result.stderr
    assert "do not make a valid policy together" in result.stderr
    assert not out.exists()
