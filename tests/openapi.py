"""Konnect's OpenAPI documents (../shared/reference/) as JSON Schema, for validating real API responses."""

from pathlib import Path

import pytest
import yaml

# ../shared/reference beside the repository (CI copies shared/ there on its clean clone).
REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = (REPO_ROOT / ".." / "shared" / "reference").resolve()
CMEK_SPEC = REFERENCE / "konnect-cmek-openapi.yaml"
CONFIG_STORE_SPEC = REFERENCE / "konnect-config-store-openapi.yaml"


def load_reference(path: Path) -> dict:
    """One of Kong's reference specs; a missing file fails the test (never a skip): the comparison is the point."""
    if not path.is_file():
        pytest.fail(f"Kong's reference spec {path.name} is missing: copy shared/ beside the repository so that "
                    f"{path} exists (CI does).", pytrace=False)
    return yaml.safe_load(path.read_text())


def openapi30_to_json_schema(node):
    """OpenAPI 3.0 `nullable: true` → JSON Schema: null becomes an allowed type (and enum value)."""
    if isinstance(node, list):
        return [openapi30_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: openapi30_to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False) is True:
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        elif "type" not in node and "enum" not in node:
            node = {"anyOf": [node, {"type": "null"}]}
    return node
