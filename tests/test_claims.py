"""The security-claims manifest and the tests that back it stay in step."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manifest_ids() -> set[str]:
    data = tomllib.loads((ROOT / "claims.toml").read_text(encoding="utf-8"))
    return {c["id"] for c in data["claim"]}


def marked_ids() -> dict[str, list[str]]:
    """Claim ids used in `pytest.mark.claim("...")` decorators, with the tests using them."""
    found: dict[str, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "claim" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                found.setdefault(str(node.args[0].value), []).append(path.name)
    return found


def test_every_claim_in_the_manifest_is_backed_by_a_test() -> None:
    missing = manifest_ids() - set(marked_ids())
    assert not missing, f"claims without a test: {sorted(missing)}"


def test_every_claim_a_test_names_is_in_the_manifest() -> None:
    unknown = set(marked_ids()) - manifest_ids()
    assert not unknown, f"tests name claims missing from claims.toml: {sorted(unknown)}"
