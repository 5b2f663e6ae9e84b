import json

import pytest

from debugger.panels import PREVIEW_CHARS, body_view, path_preview
from encryption_keys.envelope import DecryptionError, ErrorCode
from encryption_keys.error_reporting import error_card
from encryption_keys.models import EncryptionKey


def test_json_is_pretty_printed():
    view = body_view(b'{"a":1,"b":[1,2]}', headers={"Content-Type": "application/json"}, full=False)
    assert view.kind == "json" and view.text == json.dumps({"a": 1, "b": [1, 2]}, indent=2)


def test_text_binary_empty_absent():
    assert body_view(b"hello", headers={}, full=False).kind == "text"
    assert body_view(b"{not json", headers={"content-type": "application/json"}, full=False).kind == "text"
    binary = body_view(bytes(range(40)), headers={}, full=False)
    assert binary.kind == "binary" and binary.hex_rows[0][0] == "00000000" and len(binary.hex_rows) == 3
    assert binary.hex_rows[2][2] == " !\"#$%&'"
    assert body_view(b"", headers={}, full=False).kind == "empty"
    assert body_view(None, headers={}, full=False).kind == "absent"


def test_long_bodies_are_truncated_unless_full():
    body = b"x" * (PREVIEW_CHARS + 10)
    preview = body_view(body, headers={}, full=False)
    assert preview.truncated and len(preview.text) == PREVIEW_CHARS
    full = body_view(body, headers={}, full=True)
    assert not full.truncated and len(full.text) == len(body)
    big_binary = body_view(b"\x00" * 4096, headers={}, full=False)
    assert big_binary.truncated and len(big_binary.hex_rows) == 32


def test_path_preview_drops_the_query_string():
    assert path_preview("https://api.test/orders/1?api_key=secret") == "/orders/1"
    assert path_preview("https://api.test") == "/"
    assert path_preview(None) == ""
    assert len(path_preview("https://x/" + "a" * 200)) == 80


@pytest.mark.django_db
def test_error_cards_name_the_key_and_the_way_out(org, settings):
    arn = "arn:aws:kms:us-west-2:123456789012:key/mrk-1"
    EncryptionKey.objects.create(organization=org, region="us", name="Acme US key", key_ref=arn)
    card = error_card(DecryptionError(ErrorCode.KEY_DISABLED, key_ref=arn), organization_id=org.pk, manages_keys=True)
    assert (card.code, card.title, card.retryable) == ("key_disabled", "Key disabled", False)
    assert card.key_label == "your customer-managed key “Acme US key”"
    assert f"readable again within {settings.DATAKEY_FAILURE_TTL} seconds" in card.action
    platform = error_card(DecryptionError(ErrorCode.KMS_UNAVAILABLE, key_ref=settings.PLATFORM_KMS_KEYS["us"]),
                          organization_id=org.pk, manages_keys=True)
    assert platform.retryable and platform.key_label == "the platform key of this region"
    shredded = error_card(DecryptionError(ErrorCode.DATA_KEY_SHREDDED), organization_id=org.pk, manages_keys=False)
    assert shredded.key_ref == "" and "cannot be recovered" in shredded.action
