"""The tree is the architecture: layers, the way imports point, and small modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "embargo_bot"

# What each layer may import, besides itself. From the command line inward to the domain.
ALLOWED = {
    "domain": set(),
    "security": {"domain"},
    "store": {"domain", "security"},
    "lists": {"domain", "security"},
    "messages": {"domain", "security", "store", "lists"},
    "delivery": {"domain", "security", "store", "lists", "messages"},
    "devtools": {"domain"},
    "bounces": {"domain", "security", "store"},
    "settings": {"domain"},
    "shipped": set(),
    "app": {
        *("domain", "security", "store", "lists", "messages", "delivery", "bounces"),
        *("settings", "shipped"),
    },
    "officials": {
        *("domain", "security", "store", "lists", "messages", "delivery", "bounces"),
        *("app", "settings", "shipped"),
    },
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every embargo_bot module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("embargo_bot")
        ):
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists():
                    found.add(candidate)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("embargo_bot")}
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "embargo_bot"


SOURCES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {module_name(path): imports_of(path) for path in SOURCES}


def test_the_top_level_holds_few_modules_and_the_layers_are_subpackages() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]
    subpackages = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    assert len(top) <= 8, top
    assert len(subpackages) >= 4, subpackages


def test_every_subpackage_says_what_it_owns_and_what_it_may_import() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring, f"{init} has no docstring"
        assert "import" in docstring, f"{init}'s docstring does not say what it may import"


def test_imports_point_inward() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if layer(module) in ALLOWED
        and layer(target) != layer(module)
        and layer(target) not in ALLOWED[layer(module)]
    ]
    assert not wrong


def test_no_module_imports_itself_through_a_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in GRAPH.items():
        edges[module] |= {t for t in targets if t in GRAPH and t != module}
    state: dict[str, int] = {}  # 1 on the path, 2 finished
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            # A package's __init__ is imported with its modules: not a cycle of the code.
            if node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400


# What `list` must not import: the sending stack; nor, on SQLite, the migrations
# (a store at HEAD is recognised with one query) or PostgreSQL's dialect and driver.
NOT_FOR_LIST = (
    *("aiosmtplib", "apscheduler", "jinja2", "markdown_it", "cryptography", "yaml"),
    *("alembic", "mako", "psycopg", "sqlalchemy.dialects.postgresql"),
)


def test_reading_commands_do_not_load_the_sending_stack(tmp_path: Path) -> None:
    """`--help` and `list` stay quick: no SMTP client, scheduler, templates or crypto."""
    env = {"PATH": "/usr/bin:/bin", "EMBARGO_BOT_DATABASE": str(tmp_path / "store.db")}
    # `list` needs a store: made by another process, as `queue` or `run` would make it.
    make = "from embargo_bot.store import Store; import sys; Store.open(sys.argv[1]).close()"
    subprocess.run([sys.executable, "-c", make, env["EMBARGO_BOT_DATABASE"]], check=True)
    script = (
        "import sys, json\n"
        "from embargo_bot.cli.main import main\n"
        "code = main(['list'])\n"
        f"heavy = {NOT_FOR_LIST!r}\n"
        "loaded = {h for h in heavy for m in sys.modules if m == h or m.startswith(h + '.')}\n"
        "print(json.dumps([code, sorted(loaded)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0
    assert loaded == []
