"""What the documented local runs write is ignored by git and left out of the deployed package.

Each artifact is created for real in a scratch repository whose .gitignore is, in turn, this
repository's .gitignore and .funcignore (Core Tools reads .funcignore with gitignore rules), and
git says what it ignores. The list comes partly from the README itself (files a shell step
redirects to or names with --write-settings / --location), so a new documented step that writes
a new file fails here until the ignore files cover it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="needs git to evaluate the ignore rules")

# Written by the tools the README and docs/deployment.md run (not all named in a shell block).
KNOWN = [
    ".venv/bin/python",  # bootstrap.sh / the Core Tools recipe
    ".venv-checkov/pyvenv.cfg",  # scripts/check-infra.sh
    ".hypothesis/examples/x",  # the property tests
    ".pytest_cache/v/x",
    ".mypy_cache/x",
    ".ruff_cache/x",
    "sync/__pycache__/x.pyc",
    "__azurite_db_blob__.json",  # azurite without --location
    "__azurite_db_queue_extent__.json",
    "__blobstorage__/x",
    "__queuestorage__/x",
    "mapping.json",  # docs/deployment.md: copy mapping.sample.json to mapping.json
    ".azure/env/.env",  # azd
]
# Ignored by git but shipped: `func ... publish --build local` packages the dependencies from here.
GIT_ONLY = [".python_packages/lib/site-packages/x"]
# Must ship (or, for .gitignore, stay tracked).
KEPT = ["function_app.py", "host.json", "requirements.txt", "sync/runtime.py", "sync/cli/app.py"]
KEPT_IN_GIT = [*KEPT, "mapping.sample.json", "demo/event.sample.json", "local.settings.sample.json"]


def documented_outputs() -> list[str]:
    """Files the README's shell blocks write in the repository root."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"^```(?:bash|console|sh)\n(.*?)^```", readme, re.MULTILINE | re.DOTALL))
    found = set(re.findall(r"(?:--write-settings|>)\s+([\w.-]+)(?=\s|$)", blocks))
    found |= {f"{name}/x" for name in re.findall(r"--location\s+([\w.-]+)", blocks)}
    return sorted(name for name in found if not name.startswith("/"))


def ignored(ignore_file: str, paths: list[str], tmp_path: Path) -> set[str]:
    """The subset of `paths` that git ignores under `ignore_file`'s rules, each created for real."""
    root = tmp_path / ignore_file.strip(".")
    root.mkdir()
    subprocess.run([GIT or "git", "init", "-q", str(root)], check=True)  # noqa: S603 - git itself
    shutil.copy(REPO / ignore_file, root / ".gitignore")
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    done = subprocess.run(  # noqa: S603 - git itself
        [GIT or "git", "check-ignore", "--no-index", "--stdin"],
        cwd=root,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=False,
    )
    return set(done.stdout.split())


def test_the_readme_names_what_its_steps_write() -> None:
    assert {"local.settings.json", "event.json", ".azurite/x"} <= set(documented_outputs())


@pytest.mark.parametrize("ignore_file", [".gitignore", ".funcignore"])
def test_local_artifacts_are_ignored(ignore_file: str, tmp_path: Path) -> None:
    artifacts = [*documented_outputs(), *KNOWN, *(GIT_ONLY if ignore_file == ".gitignore" else [])]
    missing = sorted(set(artifacts) - ignored(ignore_file, artifacts, tmp_path))
    assert not missing, f"{ignore_file} does not cover: {missing}"


@pytest.mark.parametrize("ignore_file", [".gitignore", ".funcignore"])
def test_a_venv_symlink_is_ignored_too(ignore_file: str, tmp_path: Path) -> None:
    """In a git worktree .venv is a symlink to a shared environment: `.venv/` alone misses it."""
    root = tmp_path / "worktree"
    root.mkdir()
    subprocess.run([GIT or "git", "init", "-q", str(root)], check=True)  # noqa: S603 - git itself
    shutil.copy(REPO / ignore_file, root / ".gitignore")
    (tmp_path / "shared-venv").mkdir()
    (root / ".venv").symlink_to(tmp_path / "shared-venv")
    status = subprocess.run(  # noqa: S603 - git itself
        [GIT or "git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    )
    assert ".venv" not in status.stdout


def test_the_app_still_ships_and_examples_stay_tracked(tmp_path: Path) -> None:
    assert ignored(".funcignore", [*KEPT, *GIT_ONLY], tmp_path) == set()
    assert ignored(".gitignore", KEPT_IN_GIT, tmp_path) == set()
