"""Recipient lists: parsing, line-accurate problems, loading, selection and de-duplication."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.errors import ListError
from embargo_bot.lists.catalogue import ListCatalogue, load_lists, select_lists, unique_recipients
from embargo_bot.lists.parse import ListProblem, Recipient, RecipientList, parse_list

SHIPPED = Path(__file__).parent.parent / "recipients"

GOOD = """\
name: Police Scotland
allowed_domains: [police.example]
max_classification: OFFICIAL-SENSITIVE
recipients:
  - email: comms@police.example
"""


def only_problem(text: str) -> ListProblem:
    result, problems = parse_list(Path("lists/x.yaml"), dedent(text))
    assert result is None
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(dedent(text), encoding="utf-8")
    return path


def make_list(
    key: str, emails: list[str], ceiling: Classification = Classification.OFFICIAL_SENSITIVE
) -> RecipientList:
    path = Path(f"{key}.yaml")
    recipients = tuple(Recipient(email, None, key) for email in emails)
    return RecipientList(key, key.title(), None, ("example.org",), ceiling, recipients, path)


# --- the shipped example lists --------------------------------------------------------------


def test_every_shipped_list_loads_cleanly() -> None:
    catalogue = load_lists(SHIPPED)
    assert [str(p) for p in catalogue.problems] == []
    assert set(catalogue.lists) == {
        "police-scotland",
        "nca",
        "copfs",
        "hmrc",
        "devolved",
        "comms-subgroup",
    }
    for recipient_list in catalogue.lists.values():
        assert 2 <= len(recipient_list.recipients) <= 4
        for recipient in recipient_list.recipients:
            domain = recipient.email.rsplit("@", 1)[1]
            # Only reserved example domains may ship, so the demo can never mail anyone real.
            assert domain.endswith(".example") or domain == "example.org", recipient.email


def test_shipped_comms_subgroup_is_official_and_overlaps_another_list() -> None:
    catalogue = load_lists(SHIPPED)
    subgroup = catalogue.lists["comms-subgroup"]
    assert subgroup.max_classification is Classification.OFFICIAL
    others = {
        r.email.casefold()
        for key, lst in catalogue.lists.items()
        if key != "comms-subgroup"
        for r in lst.recipients
    }
    assert any(r.email.casefold() in others for r in subgroup.recipients)


# --- a valid file ---------------------------------------------------------------------------


def test_valid_list_is_parsed_and_normalised() -> None:
    text = """\
        name: "  Police Scotland  "
        description: Corporate communications
        allowed_domains: [Police.EXAMPLE]
        max_classification: OFFICIAL
        recipients:
          - email: "  Comms@Police.EXAMPLE "
            name: " Corporate Communications "
          - email: duty@ops.police.example
    """
    path = Path("lists/police-scotland.yaml")
    result, problems = parse_list(path, dedent(text))
    assert problems == []
    assert result == RecipientList(
        key="police-scotland",
        name="Police Scotland",
        description="Corporate communications",
        allowed_domains=("police.example",),
        max_classification=Classification.OFFICIAL,
        recipients=(
            Recipient("Comms@police.example", "Corporate Communications", "police-scotland"),
            Recipient("duty@ops.police.example", None, "police-scotland"),
        ),
        path=path,
    )


def test_optional_keys_may_be_left_out_or_empty() -> None:
    result, problems = parse_list(Path("a.yaml"), GOOD + "description:\n")
    assert problems == []
    assert result is not None
    assert result.description is None
    assert result.recipients[0].name is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (7, "lists/nca.yaml:7: bad thing"),
        (None, "lists/nca.yaml: bad thing"),
    ],
)
def test_problem_reads_as_file_line_message(line: int | None, expected: str) -> None:
    assert str(ListProblem(Path("lists/nca.yaml"), line, "bad thing")) == expected


# --- one problem per file, with its line ----------------------------------------------------

PROBLEMS = [
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example
        max_classification: OFFICIAL
        recipients: []
        """,
        3,
        ["not valid YAML", "indentation and quoting"],
        id="yaml-syntax",
    ),
    pytest.param(
        """\
        name: Police Scotland
          description: indented too far
        """,
        2,
        ["not valid YAML", "mapping values are not allowed"],
        id="yaml-bad-indent",
    ),
    pytest.param(
        """\
        # a comment first
        - name: Police Scotland
        """,
        2,
        ["top level", "not a list"],
        id="top-level-list",
    ),
    pytest.param(
        """\
        name: Police Scotland
        descripton: typo
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        2,
        ["unknown key 'descripton'", "did you mean 'description'", "allowed keys: name"],
        id="unknown-top-key",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
            nmae: Comms
        """,
        6,
        ["unknown key 'nmae' in this recipient", "did you mean 'name'", "email, name"],
        id="unknown-recipient-key",
    ),
    pytest.param(
        """\
        # Police Scotland
        name: Police Scotland
        allowed_domains: [police.example]
        recipients:
          - email: comms@police.example
        """,
        2,
        ["missing required key 'max_classification'", "add it"],
        id="missing-top-key",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
          - name: Press office
        """,
        6,
        ["this recipient is missing required key 'email'"],
        id="missing-recipient-email",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: police.example
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        2,
        ["allowed_domains must be a list", "'police.example'", "e.g. [police.example]"],
        id="allowed-domains-not-a-list",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains:
          - police.example
          - 42
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        4,
        ["allowed domain must be text", "the number 42", "put it in quotes"],
        id="allowed-domain-not-text",
    ),
    pytest.param(
        """\
        name: 2024
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        1,
        ["name must be text", "the number 2024", "put it in quotes"],
        id="name-not-text",
    ),
    pytest.param(
        """\
        name:
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        1,
        ["name must not be empty"],
        id="name-empty",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients: []
        """,
        4,
        ["recipients must not be empty"],
        id="no-recipients",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - comms@police.example
        """,
        5,
        ["each recipient must be a mapping", "{email: comms@police.example}"],
        id="recipient-not-a-mapping",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
          - email: press..office@police.example
        """,
        6,
        ["'press..office@police.example' is not a valid email address", "period"],
        id="invalid-email",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.test]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        2,
        ["allowed domain 'police.test' is not valid", "special-use", "bare domain"],
        id="special-use-domain",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains:
          - police.example
          - comms@police.example
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        4,
        ["'comms@police.example' looks like an address", "bare domain such as police.example"],
        id="address-as-domain",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
          - email: soc.lead@police.example
          - email: COMMS@Police.Example
        """,
        7,
        ["COMMS@police.example is listed twice (first on line 5)", "remove one"],
        id="duplicate-address",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example, nca.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
          - email: comms@evilpolice.example
        """,
        6,
        [
            "comms@evilpolice.example is not at an allowed domain (police.example, nca.example)",
            "add its domain to allowed_domains",
        ],
        id="address-outside-allowed-domains",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: SECRET
        recipients:
          - email: comms@police.example
        """,
        3,
        ["max_classification 'SECRET' is not known", "use OFFICIAL or OFFICIAL-SENSITIVE"],
        id="unknown-classification",
    ),
    pytest.param(
        """\
        name: "Police\\r\\nBcc: everyone@example.org"
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        1,
        ["name contains control character U+000D", "email headers", "one line"],
        id="crlf-in-name",
    ),
    pytest.param(
        """\
        name: Police Scotland
        description: "first line\\nsecond line"
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        2,
        ["description contains control character U+000A"],
        id="lf-in-description",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
            name: "Comms\\0"
        """,
        6,
        ["recipient name contains control character U+0000"],
        id="nul-in-recipient-name",
    ),
    pytest.param(
        """\
        name: Police Scotland
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        name: Police Scotland again
        recipients:
          - email: comms@police.example
        """,
        4,
        ["'name' is given twice (first on line 1)"],
        id="duplicate-key",
    ),
    pytest.param(
        """\
        name: !!python/name:os.system ''
        allowed_domains: [police.example]
        max_classification: OFFICIAL
        recipients:
          - email: comms@police.example
        """,
        1,
        ["name must be text", "a value tagged tag:yaml.org,2002:python/name:os.system"],
        id="python-tag-is-not-run",
    ),
]


@pytest.mark.parametrize(("text", "line", "fragments"), PROBLEMS)
def test_problem_is_reported_on_its_line(text: str, line: int, fragments: list[str]) -> None:
    problem = only_problem(text)
    assert problem.path == Path("lists/x.yaml")
    assert problem.line == line
    for fragment in fragments:
        assert fragment in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_a_problem_for_the_whole_file(text: str) -> None:
    problem = only_problem(text)
    assert problem.line is None
    assert "file is empty" in problem.message
    assert "name, allowed_domains, max_classification, recipients" in problem.message


def test_raw_nul_byte_is_reported_on_its_line() -> None:
    problem = only_problem("name: Police\nallowed_domains: [police\x00.example]\n")
    assert problem.line == 2
    assert "U+0000" in problem.message


def test_subdomains_of_allowed_domains_are_accepted() -> None:
    text = GOOD.replace("comms@police.example", "duty@north.ops.POLICE.example")
    result, problems = parse_list(Path("a.yaml"), text)
    assert problems == []
    assert result is not None
    assert result.recipients[0].email == "duty@north.ops.police.example"


def test_every_problem_in_a_file_is_reported_in_line_order() -> None:
    text = """\
        name: 7
        descripton: typo
        allowed_domains: [police.example]
        max_classification: TOP SECRET
        recipients:
          - email: not-an-address
          - email: comms@nca.example
          - email: comms@police.example
          - email: Comms@police.example
        extra: true
    """
    result, problems = parse_list(Path("x.yaml"), dedent(text))
    assert result is None
    assert [(p.line, p.message.split(" ", 3)[:3]) for p in problems] == [
        (1, ["name", "must", "be"]),
        (2, ["unknown", "key", "'descripton'"]),
        (4, ["max_classification", "'TOP", "SECRET'"]),
        (6, ["'not-an-address'", "is", "not"]),
        (7, ["comms@nca.example", "is", "not"]),
        (9, ["Comms@police.example", "is", "listed"]),
        (10, ["unknown", "key", "'extra'"]),
    ]


def test_missing_keys_are_all_reported_at_the_mapping_start() -> None:
    result, problems = parse_list(Path("x.yaml"), "\n\nname: Police Scotland\n")
    assert result is None
    assert [(p.line, p.message) for p in problems] == [
        (3, f"the list is missing required key '{key}'; add it")
        for key in ("allowed_domains", "max_classification", "recipients")
    ]


def test_addresses_are_not_checked_against_broken_allowed_domains() -> None:
    # A typo in allowed_domains would otherwise also flag every address as outside it.
    text = GOOD.replace("[police.example]", "[police..example]")
    problem = only_problem(text)
    assert problem.line == 2
    assert "allowed domain 'police..example'" in problem.message


# --- loading a directory --------------------------------------------------------------------


def test_bad_file_does_not_stop_good_files_loading(tmp_path: Path) -> None:
    write(tmp_path, "a-good.yaml", GOOD)
    write(tmp_path, "b-bad.yaml", GOOD.replace("OFFICIAL-SENSITIVE", "SECRET"))
    write(tmp_path, "c-good.yml", GOOD)
    write(tmp_path, "d-broken.yaml", "name: [unclosed\n")
    write(tmp_path, "notes.txt", "not a list")
    write(tmp_path, "e.json", "{}")
    write(tmp_path, ".#a-good.yaml", "editor lock file")

    catalogue = load_lists(tmp_path)

    assert catalogue.directory == tmp_path
    assert list(catalogue.lists) == ["a-good", "c-good"]
    assert catalogue.lists["c-good"].path == tmp_path / "c-good.yml"
    assert [(p.path.name, p.line) for p in catalogue.problems] == [
        ("b-bad.yaml", 3),
        ("d-broken.yaml", 2),
    ]
    assert str(catalogue.problems[0]).startswith(f"{tmp_path / 'b-bad.yaml'}:3: ")


def test_file_that_is_not_utf8_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    write(tmp_path, "latin1.yaml", GOOD.replace("Scotland", "Scotland caf\xe9").encode("latin-1"))

    catalogue = load_lists(tmp_path)

    assert list(catalogue.lists) == ["good"]
    (problem,) = catalogue.problems
    assert problem.path == tmp_path / "latin1.yaml"
    assert problem.line == 1
    assert "not valid UTF-8" in problem.message
    assert "0xe9" in problem.message
    assert "save the file as UTF-8" in problem.message


def test_same_key_in_yaml_and_yml_refuses_both(tmp_path: Path) -> None:
    write(tmp_path, "nca.yaml", GOOD)
    write(tmp_path, "nca.yml", GOOD)
    write(tmp_path, "other.yaml", GOOD)

    catalogue = load_lists(tmp_path)

    assert list(catalogue.lists) == ["other"]
    (problem,) = catalogue.problems
    assert problem.path == tmp_path / "nca.yml"
    assert "also used by nca.yaml" in problem.message


def test_missing_directory_is_a_list_error_naming_it_and_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ListError) as caught:
        load_lists(missing)
    assert str(missing) in str(caught.value)
    assert "EMBARGO_BOT_RECIPIENTS_DIR" in str(caught.value)


def test_directory_with_no_list_files_is_a_list_error(tmp_path: Path) -> None:
    write(tmp_path, "readme.txt", "lists go here")
    with pytest.raises(ListError, match=r"No recipient lists \(\*\.yaml or \*\.yml files\)"):
        load_lists(tmp_path)


# --- choosing lists for a pack --------------------------------------------------------------


@pytest.fixture
def catalogue(tmp_path: Path) -> ListCatalogue:
    write(tmp_path, "nca.yaml", GOOD.replace("police", "nca"))
    write(tmp_path, "police-scotland.yaml", GOOD)
    write(tmp_path, "comms.yaml", GOOD.replace("OFFICIAL-SENSITIVE", "OFFICIAL"))
    write(tmp_path, "hmrc.yaml", GOOD.replace("max_classification", "max_class"))
    return load_lists(tmp_path)


def test_select_lists_keeps_the_pack_order_and_ignores_repeats(catalogue: ListCatalogue) -> None:
    keys = ["police-scotland", "nca", "police-scotland", "comms"]
    selected = select_lists(catalogue, keys, Classification.OFFICIAL)
    assert [lst.key for lst in selected] == ["police-scotland", "nca", "comms"]


@pytest.mark.parametrize(
    ("keys", "classification", "fragments"),
    [
        pytest.param(
            ["nca", "cops"],
            Classification.OFFICIAL,
            ["no list 'cops'", "known lists: comms, hmrc, nca, police-scotland"],
            id="unknown-key",
        ),
        pytest.param(
            ["hmrc"],
            Classification.OFFICIAL,
            ["list 'hmrc' is invalid: ", "hmrc.yaml:3: unknown key 'max_class'"],
            id="invalid-list",
        ),
        pytest.param(
            ["nca", "comms"],
            Classification.OFFICIAL_SENSITIVE,
            ["list 'comms' is cleared only to OFFICIAL", "pack is marked OFFICIAL-SENSITIVE"],
            id="classification-ceiling",
        ),
    ],
)
def test_select_lists_refuses(
    catalogue: ListCatalogue,
    keys: list[str],
    classification: Classification,
    fragments: list[str],
) -> None:
    with pytest.raises(ListError) as caught:
        select_lists(catalogue, keys, classification)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


def test_select_lists_reports_every_problem_at_once(catalogue: ListCatalogue) -> None:
    keys = ["cops", "hmrc", "comms", "nca"]
    with pytest.raises(ListError) as caught:
        select_lists(catalogue, keys, Classification.OFFICIAL_SENSITIVE)
    problems = caught.value.problems
    assert problems[0].startswith("no list 'cops'")
    assert [p.split(":", 1)[0] for p in problems[1:-1]] == ["list 'hmrc' is invalid"] * 2
    assert problems[-1].startswith("list 'comms' is cleared only to OFFICIAL")


def test_select_lists_refuses_an_empty_selection(catalogue: ListCatalogue) -> None:
    with pytest.raises(ListError, match="names no recipient lists"):
        select_lists(catalogue, [], Classification.OFFICIAL)


# --- de-duplication across lists ------------------------------------------------------------


def test_unique_recipients_keeps_the_first_list_and_file_order() -> None:
    police = make_list("police", ["comms@example.org", "soc@example.org"])
    comms = make_list("comms", ["press@example.org", "Comms@EXAMPLE.org", "SOC@example.org"])
    nhs = make_list("nhs", ["media@example.org", "press@example.org"])

    unique = unique_recipients([police, comms, nhs])

    assert [(r.email, r.list_key) for r in unique] == [
        ("comms@example.org", "police"),
        ("soc@example.org", "police"),
        ("press@example.org", "comms"),
        ("media@example.org", "nhs"),
    ]


def test_unique_recipients_on_shipped_lists_drops_the_shared_address() -> None:
    catalogue = load_lists(SHIPPED)
    lists = select_lists(catalogue, ["police-scotland", "comms-subgroup"], Classification.OFFICIAL)
    unique = unique_recipients(lists)
    total = sum(len(lst.recipients) for lst in lists)
    assert len(unique) < total
    assert len({r.email.casefold() for r in unique}) == len(unique)


def test_an_unknown_list_names_the_option_and_suggests_the_nearest(
    catalogue: ListCatalogue,
) -> None:
    with pytest.raises(ListError) as caught:
        select_lists(catalogue, ["police-scotlnd"], Classification.OFFICIAL, option="--lists")
    [problem] = caught.value.problems
    assert problem.startswith("--lists: no list 'police-scotlnd'")
    assert "did you mean police-scotland?" in problem
    with pytest.raises(ListError) as caught:
        select_lists(catalogue, ["zzz"], Classification.OFFICIAL)
    assert "did you mean" not in str(caught.value)
