"""docs/deployment.md says what the templates do, with one set of names throughout."""

from __future__ import annotations

import re

from tests.infra.test_bicep import REPO, doc

GUIDE = (REPO / "docs" / "deployment.md").read_text()


def test_guide_documents_every_parameter_of_main() -> None:
    missing = [name for name in doc("main.bicep")["parameters"] if f"`{name}" not in GUIDE]
    assert not missing, missing


def test_guide_uses_the_deployment_output_names_throughout() -> None:
    """The CLI path once defined RG/APP while later steps used $AZURE_RESOURCE_GROUP and friends."""
    assert not re.search(r"\$\{?(RG|APP)\b", GUIDE)
    assert not re.search(r"^\s*(RG|APP)=", GUIDE, re.MULTILINE)
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", GUIDE))
    # Every upper-case variable a command reads is a deployment output or assigned in the guide.
    undefined = [
        name
        for name in used - set(doc("main.bicep")["outputs"])
        if not re.search(rf"(^|[\s(;]){name}=", GUIDE, re.MULTILINE)
    ]
    assert not undefined, undefined
