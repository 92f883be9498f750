"""The README's Core Tools recipe installs everything the emulator, the functions and the CLI import.

Building a real virtual environment from the README's pip line would cost a minute of CI and the
network. Instead: read the pip line(s) from the README's Core Tools section, resolve the named
requirement files to distributions (and their dependencies, from the installed metadata), and
check that every third-party module imported by emulator/, sync/ and function_app.py is provided
by one of them. Drop `-r requirements-dev.txt` from the README and this fails naming trustme.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Running under Azure Functions Core Tools"
LOCAL = {"sync", "emulator", "demo", "function_app", "tests"}
IMPORTERS = [*sorted((REPO / "emulator").glob("*.py")), *sorted((REPO / "sync").rglob("*.py"))]
IMPORTERS.append(REPO / "function_app.py")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def core_tools_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return readme[start : end if end != -1 else None]


def pip_lines(section: str) -> list[list[str]]:
    """The argument lists of every `pip install` in the section's shell blocks."""
    found = []
    blocks = re.findall(r"^```(?:bash|console|sh)\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    for line in "\n".join(blocks).splitlines():
        command = line.split("#", 1)[0].strip()
        if not re.search(r"\bpip3? install\b", command):
            continue
        for part in command.split("&&"):
            words = shlex.split(part)
            for index in range(len(words) - 1):
                if words[index].endswith("pip") and words[index + 1] == "install":
                    found.append(words[index + 2 :])
    return found


def requirement_names(path: Path) -> set[str]:
    """The distributions a requirements file installs (its `-r` includes too; `-c` only constrains)."""
    names: set[str] = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith(("-c", "--constraint")):
            continue
        if line.startswith(("-r ", "--requirement ")):
            names |= requirement_names(path.parent / line.split(maxsplit=1)[1])
            continue
        names.add(normalize(Requirement(line).name))
    return names


def named_distributions(arguments: list[str]) -> set[str]:
    names: set[str] = set()
    words = iter(arguments)
    for word in words:
        if word in ("-r", "--requirement"):
            names |= requirement_names(REPO / next(words))
        elif word.startswith("-"):
            raise AssertionError(f"the README's pip line has an option this test does not know: {word}")
        else:
            names.add(normalize(Requirement(word).name))
    return names


def closure(names: set[str]) -> set[str]:
    """The named distributions and everything they depend on (markers evaluated, extras followed)."""
    done: set[str] = set()
    todo = [(name, frozenset[str]()) for name in names]
    while todo:
        name, extras = todo.pop()
        key = normalize(name)
        if key in done and not extras:
            continue
        done.add(key)
        for spec in metadata.distribution(name).requires or []:
            requirement = Requirement(spec)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            marker = requirement.marker
            if marker is None or any(marker.evaluate(env) for env in environments):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return done


def third_party_imports(path: Path) -> Iterator[tuple[str, int]]:
    """(module, line) for each absolute import outside the standard library and this repository.

    `if TYPE_CHECKING:` blocks are skipped: they are never imported at run time.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [f"{node.module}.{alias.name}" for alias in node.names] or [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top not in LOCAL and top != "__future__":
                yield module, node.lineno


@cache
def top_level_owners() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


@cache
def modules_of(distribution: str) -> frozenset[str]:
    """Every module and package path a distribution installs ('azure/keyvault/secrets', 'trustme')."""
    paths: set[str] = set()
    for file in metadata.distribution(distribution).files or []:
        parts = file.parts
        paths.update("/".join(parts[:length]) for length in range(1, len(parts)))
        if file.suffix == ".py":
            paths.add("/".join(parts).removesuffix(".py"))
    return frozenset(paths)


def providers(module: str) -> set[str]:
    """The distributions that install `module` (or, for `from a import b`, module `a.b` or `a`).

    Namespace packages (azure, opentelemetry) are shared, so the deepest path decides.
    """
    top_level = top_level_owners().get(module.split(".")[0], [])
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        path = "/".join(parts[:length])
        owners = {normalize(name) for name in top_level if path in modules_of(name)}
        if owners:
            return owners
    return set()


def test_the_readme_installs_requirement_files_that_exist() -> None:
    lines = pip_lines(core_tools_section())
    assert lines, "the Core Tools section has no `pip install` line"
    assert "requirements.txt" in lines[0]


def test_every_import_of_the_emulator_the_functions_and_the_cli_is_installed_by_the_readme() -> None:
    installed = closure(set().union(*map(named_distributions, pip_lines(core_tools_section()))))
    missing = []
    for path in IMPORTERS:
        for module, line in third_party_imports(path):
            owners = providers(module)
            if not owners & installed:
                where = f"{path.relative_to(REPO)}:{line}"
                missing.append(f"{where} imports {module} (from {', '.join(sorted(owners)) or '?'})")
    assert not missing, "not installed by the README's Core Tools steps:\n" + "\n".join(missing)


def test_the_check_notices_a_missing_distribution() -> None:
    """The proof has teeth: requirements.txt alone leaves the emulator without trustme."""
    runtime_only = closure(named_distributions(["-r", "requirements.txt"]))
    assert "trustme" in providers("trustme")
    assert "trustme" not in runtime_only
    assert {"azure-functions", "aiohttp", "typer"} <= runtime_only
