"""Konnect's OpenAPI documents (../shared/reference/) as JSON Schema, for validating real API responses."""

from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
CMEK_SPEC = REFERENCE / "konnect-cmek-openapi.yaml"
CONFIG_STORE_SPEC = REFERENCE / "konnect-config-store-openapi.yaml"


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
