"""The served OpenAPI documents against Kong's reference specs (../shared/reference/), operation by operation.

For every operation of Kong's specs: method + path relative to the server, operationId, parameters (name, in,
required, schema type/format/enum), request body media types and required fields, response status codes and
their media types; and per document the servers (one per region) and the security scheme names. Every
difference left is in KNOWN with a one-line reason: a new difference fails, and so does a listed one that is gone.
Operations Kong's specs do not have (the data-plane API on /v1) are our extensions and are not compared.

Run with `-s` to print the table (the one in issue 15's closing note).
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.openapi import CMEK_SPEC, CONFIG_STORE_SPEC, load_reference

pytestmark = pytest.mark.django_db

# Which served document answers which reference spec (the CMEK operations are served on /v0 and /v1 alike).
COMPARISONS = [("v0", CMEK_SPEC), ("v1", CMEK_SPEC), ("v2", CONFIG_STORE_SPEC)]
NOT_ON_V1 = "Kong's docs list blobs and materials under /v0 only; /v1 carries the CMEK operations for Terraform"
KNOWN = {
    # --- CMEK and blob API (Kong: servers /v0) ---
    "v1 GET /blobs/{blobId}: not served": NOT_ON_V1,
    "v1 PUT /blobs/{blobId}: not served": NOT_ON_V1,
    **{f"{version} POST /materials/{kind}: response {status} only in ours": reason
       for version in ("v0", "v1") for kind in ("encryption", "decryption")
       for status, reason in [("401", "no or an unknown token (Kong lists only 400)"),
                              ("403", "not a system account holding the Envelope Materials role"),
                              ("409", "the organization's key cannot be used (disabled, deleted, ...): no Retry-After"),
                              ("429", "the organization's envelope-materials budget is spent (Retry-After)"),
                              ("503", "KMS unreachable, or the rate limiter's shared cache is down (Retry-After)")]},
    "v0 security: dataPlaneToken is ours only": "a gateway's data-plane token may store and read its own blobs",
    "v1 security: dataPlaneToken is ours only": "the data-plane operations of /v1 (ingest, resolve) take it",
    "v0 GET /blobs/{blobId}: response 200 as ['application/octet-stream'], Kong ['*/*']":
        "a blob is always an opaque download (never rendered); its declared type is in X-Konnect-Blob-Content-Type",
    "v0 GET /blobs/{blobId}: response 400 only in ours": "a malformed blobId is refused with invalid_parameters",
    "v0 GET /blobs/{blobId}: response 409 only in ours": "a blob whose data key cannot be decrypted says why",
    "v0 GET /blobs/{blobId}: response 503 only in ours": "KMS unreachable: retry (Retry-After)",
    "v0 PUT /blobs/{blobId}: response 404 only in ours": "a data plane's token used in another region",
    "v0 PUT /blobs/{blobId}: response 413 only in ours": "bodies above the blob limit are refused before reading",
    "v0 PUT /blobs/{blobId}: response 503 only in ours": "no data key (KMS unreachable): nothing stored, retry",
    **{f"{version} GET /cmeks: response {status} only in ours": reason for version in ("v0", "v1")
       for status, reason in [("400", "a bad page[size], cursor or filter is refused with invalid_parameters"),
                              ("401", "Kong lists no error for list-cmeks; a missing token is a 401 here as anywhere"),
                              ("403", "a caller whose role may not see keys")]},
    **{f"{version} PUT /cmeks/{{cmekId}}: response {status} only in ours": reason for version in ("v0", "v1")
       for status, reason in [("404", "a cmekId other than 'default'"),
                              ("409", "the key is in use elsewhere, or a replacement is refused"),
                              ("503", "AWS KMS could not be reached to verify the key (Retry-After)")]},
    # --- Config Store API (Kong: servers /v2) ---
    "v2 security: systemAccountAccessToken is ours only":
        "automation's system-account tokens (spat_) work on the Config Store API as on the CMEK API",
    "v2 POST /control-planes/{controlPlaneId}/config-stores/{configStoreId}/secrets: response 409 only in ours":
        "the organization's key refuses the write (disabled, deleted, ...): nothing stored, no Retry-After",
    "v2 PUT /control-planes/{controlPlaneId}/config-stores/{configStoreId}/secrets/{key}: response 409 only in ours":
        "the organization's key refuses the write (disabled, deleted, ...): nothing stored, no Retry-After",
    "v2 security: Kong's konnectAccessToken not offered":
        "Konnect's session tokens (decK, the UI) do not exist here; personal access tokens do",
    "v2 GET /control-planes/{controlPlaneId}/config-stores: response 404 only in ours":
        "an unknown control plane (or one of another region or organization)",
    "v2 POST /control-planes/{controlPlaneId}/config-stores: response 404 only in ours":
        "an unknown control plane (or one of another region or organization)",
    "v2 POST /control-planes/{controlPlaneId}/config-stores: response 503 only in ours":
        "the store's name is encrypted: no data key (KMS unreachable), nothing stored",
    "v2 GET /control-planes/{controlPlaneId}/config-stores/{configStoreId}: response 404 only in ours":
        "an unknown config store (Kong's spec omits it here but lists it for update)",
    "v2 PUT /control-planes/{controlPlaneId}/config-stores/{configStoreId}: response 503 only in ours":
        "no data key (KMS unreachable): nothing stored",
    "v2 DELETE /control-planes/{controlPlaneId}/config-stores/{configStoreId}: response 404 only in ours":
        "an unknown config store",
    "v2 POST /control-planes/{controlPlaneId}/config-stores/{configStoreId}/secrets: response 503 only in ours":
        "no data key (KMS unreachable): nothing stored",
    "v2 PUT /control-planes/{controlPlaneId}/config-stores/{configStoreId}/secrets/{key}: response 503 only in ours":
        "no data key (KMS unreachable): nothing stored",
}

METHODS = ("get", "put", "post", "delete", "patch")


def _resolve(document: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _media(name: str) -> str:
    return "*/*" if name == "*" else name  # Kong's malformed `*` media type


def _schema_type(document: dict, schema: dict) -> tuple:
    schema = _resolve(document, schema or {})
    return schema.get("type"), schema.get("format"), tuple(schema.get("enum") or ()) or None


def _operations(document: dict) -> dict[tuple[str, str], dict]:
    found = {}
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            parameters = {}
            for parameter in [*shared, *operation.get("parameters", [])]:
                parameter = _resolve(document, parameter)
                name = parameter["name"].lower() if parameter["in"] == "header" else parameter["name"]
                parameters[(parameter["in"], name)] = (bool(parameter.get("required")),
                                                        *_schema_type(document, parameter.get("schema")))
            body = _resolve(document, operation.get("requestBody")) or {}
            body_media = {_media(name): sorted(_resolve(document, content.get("schema", {})).get("required", []))
                          for name, content in body.get("content", {}).items()}
            responses = {str(status): sorted(_media(name) for name in _resolve(document, response).get("content", {}))
                         for status, response in operation["responses"].items()}
            found[(method.upper(), path)] = {"operationId": operation.get("operationId"), "parameters": parameters,
                                             "body": body_media, "responses": responses}
    return found


def _schemes(document: dict) -> set[str]:
    names = {name for requirement in document.get("security", []) for name in requirement}
    for item in document["paths"].values():
        for method in METHODS:
            names |= {name for requirement in item.get(method, {}).get("security", []) for name in requirement}
    return names


def differences(version: str, ours: dict, kong: dict) -> list[str]:
    found = []
    regions = {server["url"].split("//")[1].split(".")[0] for server in kong["servers"]}
    served = {server["url"] for server in ours["servers"]}
    for region in sorted(regions):
        if f"/api/{region}/{version}" not in served:
            found.append(f"{version} servers: no server for region {region}")
    if any(not path.startswith("/") or path.startswith("/api/") for path in ours["paths"]):
        found.append(f"{version} paths: not relative to the server")
    for name in sorted(_schemes(kong) - _schemes(ours)):
        found.append(f"{version} security: Kong's {name} not offered")
    for name in sorted(_schemes(ours) - _schemes(kong)):
        found.append(f"{version} security: {name} is ours only")
    our_operations = _operations(ours)
    for key, theirs in _operations(kong).items():
        where = f"{version} {key[0]} {key[1]}"
        mine = our_operations.get(key)
        if mine is None:
            found.append(f"{where}: not served")
            continue
        if mine["operationId"] != theirs["operationId"]:
            found.append(f"{where}: operationId {mine['operationId']}, Kong {theirs['operationId']}")
        for parameter in sorted(theirs["parameters"].keys() | mine["parameters"].keys()):
            label = f"{parameter[0]} parameter {parameter[1]}"
            if parameter not in mine["parameters"]:
                found.append(f"{where}: {label} missing")
            elif parameter not in theirs["parameters"]:
                found.append(f"{where}: {label} only in ours")
            elif mine["parameters"][parameter] != theirs["parameters"][parameter]:
                found.append(f"{where}: {label} (required, type, format, enum) {mine['parameters'][parameter]}, "
                             f"Kong {theirs['parameters'][parameter]}")
        if mine["body"] != theirs["body"]:
            found.append(f"{where}: request body {mine['body']}, Kong {theirs['body']}")
        for status in sorted(theirs["responses"].keys() | mine["responses"].keys()):
            if status not in mine["responses"]:
                found.append(f"{where}: response {status} missing")
            elif status not in theirs["responses"]:
                found.append(f"{where}: response {status} only in ours")
            elif mine["responses"][status] != theirs["responses"][status]:
                found.append(f"{where}: response {status} as {mine['responses'][status]}, "
                             f"Kong {theirs['responses'][status]}")
    return found


def test_served_documents_match_kongs_specs_but_for_the_listed_differences():
    found = []
    for version, spec in COMPARISONS:
        ours = Client().get(f"/api/us/{version}/openapi.json").json()
        found += differences(version, ours, load_reference(spec))
    print("\n| difference | reason |\n|---|---|")
    for difference in found:
        print(f"| {difference} | {KNOWN.get(difference, 'NOT LISTED')} |")
    unexpected = [difference for difference in found if difference not in KNOWN]
    gone = [difference for difference in KNOWN if difference not in found]
    assert not unexpected, "differences from Kong's specs without a reason in KNOWN:\n" + "\n".join(unexpected)
    assert not gone, "listed differences that no longer exist (remove them from KNOWN):\n" + "\n".join(gone)
    assert all(reason.strip() for reason in KNOWN.values())


def test_every_region_serves_its_own_server_first():
    for region in ("us", "eu", "sg"):
        document = Client().get(f"/api/{region}/v2/openapi.json").json()
        assert document["servers"][0]["url"] == f"/api/{region}/v2"
        assert len(document["servers"]) == 6


def test_the_comparison_sees_a_difference():
    """The comparison itself: a renamed operation, a retyped parameter and an undocumented error are reported."""
    kong = load_reference(CONFIG_STORE_SPEC)
    ours = Client().get("/api/us/v2/openapi.json").json()
    item = ours["paths"]["/control-planes/{controlPlaneId}/config-stores"]
    item["get"]["operationId"] = "renamed"
    item["get"]["parameters"][0]["schema"] = {"type": "string"}
    del item["post"]["responses"]["415"]
    found = differences("v2", ours, kong)
    where = "v2 {} /control-planes/{{controlPlaneId}}/config-stores"
    assert f"{where.format('GET')}: operationId renamed, Kong list-config-stores" in found
    assert any(line.startswith(f"{where.format('GET')}: path parameter controlPlaneId") for line in found)
    assert f"{where.format('POST')}: response 415 missing" in found
