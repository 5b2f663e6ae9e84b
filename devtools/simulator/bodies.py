"""Headers and bodies of a simulated request, on each leg: client → Kong → upstream → Kong → client."""

from __future__ import annotations

import json
import random
import struct
import zlib
from email.utils import format_datetime

FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
SKUS = ("SKU-1042", "SKU-2210", "SKU-3301", "SKU-4417", "SKU-5009")


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _mask_cookie(cookie: str) -> str:
    """`session=abc; theme=dark` → `session=****; theme=****`, as the Debugger masks cookies."""
    return "; ".join(f"{part.split('=', 1)[0].strip()}=****" for part in cookie.split(";") if part.strip())


def _png(rnd: random.Random, size: int = 600) -> bytes:
    """A small, genuine-looking PNG (signature, IHDR, compressed noise, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes(rnd.getrandbits(8) for _ in range(size)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _bodies(request, outcome: str, rnd: random.Random) -> tuple[bytes | None, str, bytes, str]:
    """(request body, its content type, response body, its content type) of the upstream call."""
    route = request.endpoint.route
    name = rnd.choice(FIRST_NAMES)
    if outcome == "not_found":
        return None, "", _json({"error": "not_found", "message": f"No resource at {request.path}"}), "application/json"
    if outcome == "unavailable":
        return None, "", _json({"error": "unavailable", "message": "database pool exhausted, retry later"}), "application/json"
    if route == "orders-create":
        items = [{"sku": rnd.choice(SKUS), "quantity": rnd.randint(1, 3), "unit_price": round(rnd.uniform(5, 120), 2)}
                 for _ in range(rnd.randint(1, 4))]
        order = {"customer": {"id": f"cus_{rnd.getrandbits(40):x}", "email": f"{name.lower()}@example.com",
                              "name": f"{name} Tester"},
                 "items": items, "currency": "USD",
                 "shipping": {"line1": f"{rnd.randint(1, 999)} Main Street", "city": "Springfield", "country": "US"}}
        created = {"id": f"ord_{rnd.getrandbits(48):x}", "status": "created",
                   "total": round(sum(i["quantity"] * i["unit_price"] for i in items), 2), "currency": "USD"}
        return _json(order), "application/json", _json(created), "application/json"
    if route == "orders-get":
        order = {"id": f"ord_{request.path.rsplit('/', 1)[-1]}", "status": rnd.choice(["paid", "shipped", "delivered"]),
                 "customer": {"email": f"{name.lower()}@example.com"}, "items": [{"sku": rnd.choice(SKUS), "quantity": 1}]}
        return None, "", _json(order), "application/json"
    if route == "payments-capture":
        capture = {"amount": rnd.randint(500, 50_000), "currency": "usd",
                   "payment_method": {"card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2029}}}
        return _json(capture), "application/json", _json({"id": f"pay_{rnd.getrandbits(48):x}", "captured": True}), "application/json"
    if route == "catalog-search":
        products = [{"sku": sku, "name": f"Product {sku[-4:]}", "price": round(rnd.uniform(5, 120), 2)}
                    for sku in rnd.sample(SKUS, 3)]
        return None, "", _json({"results": products, "page": 1, "total": 3}), "application/json"
    if route == "catalog-thumbnail":
        return None, "", _png(rnd), "image/png"
    form = "grant_type=client_credentials&client_id=mobile-app&client_secret=****"
    return form.encode(), "application/x-www-form-urlencoded", _json(
        {"access_token": "****", "token_type": "Bearer", "expires_in": 3600}), "application/json"


def payloads(request, outcome: str, rnd: random.Random, *, kong_version: str, host: str) -> dict[str, dict]:
    endpoint = request.endpoint
    request_id = f"{rnd.getrandbits(128):032x}"
    query = f"?q={rnd.choice(['shoes', 'lamp', 'mug'])}&page=1&api_key=****" if endpoint.route == "catalog-search" else ""
    body, body_type, response_body, response_type = _bodies(request, outcome, rnd)
    client_headers = {
        "host": host, "user-agent": rnd.choice(["okhttp/4.12.0", "Mozilla/5.0 (Macintosh) Safari/605.1.15", "curl/8.7.1"]),
        "accept": "application/json", "x-request-id": request_id,
        "traceparent": f"00-{request.trace_id}-{rnd.getrandbits(64):016x}-01",
        "cookie": _mask_cookie("session=s%3Aab12cd; _ga=GA1.2.3; theme=dark"),
    }
    if "key-auth" in endpoint.plugins and outcome != "unauthorized":
        client_headers["authorization"] = "Bearer ****"
    if body is not None:
        client_headers.update({"content-type": body_type, "content-length": str(len(body))})
    result = {"client_request": {"url": f"https://{host}{request.path}{query}", "headers": client_headers, "body": body}}
    if request.upstream_ms is not None:
        upstream_headers = {k: v for k, v in client_headers.items() if k not in ("authorization", "cookie", "host")}
        upstream_headers.update({
            "host": endpoint.upstream, "x-forwarded-for": request.client_ip, "x-forwarded-proto": "https",
            "x-forwarded-host": host, "x-forwarded-port": "443", "x-kong-request-id": request_id,
        })
        if request.consumer:
            upstream_headers.update({"x-consumer-username": request.consumer, "x-credential-identifier": "****"})
        result["upstream_request"] = {"url": f"http://{endpoint.upstream}{request.path}{query}",
                                      "headers": upstream_headers, "body": body}
    response_headers = {"date": format_datetime(request.start, usegmt=True)}
    if outcome in ("unauthorized", "rate_limited"):
        message = "Unauthorized" if outcome == "unauthorized" else "API rate limit exceeded"
        response_body, response_type = _json({"message": message, "request_id": request_id}), "application/json"
    elif outcome == "bad_gateway":
        response_body = _json({"message": "An invalid response was received from the upstream server",
                               "request_id": request_id})
        response_type = "application/json"
    else:
        upstream_response = {**response_headers, "content-type": response_type,
                             "content-length": str(len(response_body)), "server": "gunicorn"}
        result["upstream_response"] = {"headers": upstream_response, "body": response_body}
        response_headers = dict(upstream_response)
    response_headers.update({
        "content-type": response_type, "content-length": str(len(response_body)),
        "x-kong-request-id": request_id, "via": f"1.1 kong/{kong_version}",
        "x-kong-proxy-latency": str(int(request.kong_ms)),
    })
    if request.upstream_ms is not None:
        response_headers["x-kong-upstream-latency"] = str(int(request.upstream_ms))
    if "rate-limiting" in endpoint.plugins:
        response_headers.update({"ratelimit-limit": "60", "ratelimit-remaining": "0" if outcome == "rate_limited" else
                                 str(rnd.randint(1, 59)), "ratelimit-reset": str(rnd.randint(1, 60))})
    result["client_response"] = {"headers": response_headers, "body": response_body}
    return result
