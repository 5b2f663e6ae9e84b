"""Upgrading a database whose tokens never expired: every token gets an expiry, then the column refuses NULL — so a
token written without one (by a script, the admin, an old code path) cannot live for ever."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from konnect_admin import tokens
from konnect_admin.models import DataPlaneToken, PersonalAccessToken
from konnect_admin.models.tokens import new_token, token_digest
from tests import factories
from tests.migrations import schema_at

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("konnect_admin", "0002_tokens")]
AFTER = [("konnect_admin", "0004_token_expiry_required")]


@pytest.fixture
def old_schema():
    """The database before tokens expired; yields the historical token models (expires_at nullable)."""
    with schema_at(BEFORE) as apps:
        yield apps.get_model("konnect_admin", "PersonalAccessToken"), apps.get_model("konnect_admin", "DataPlaneToken")


def upgrade():
    MigrationExecutor(connection).migrate(AFTER)


def issue(model, prefix: str, **fields) -> str:
    """A token as the historical `model` wrote it (no expiry unless given); returns its text."""
    text = new_token(prefix)
    model.objects.create(name="old", digest=token_digest(text), hint=text[:12], **fields)
    return text


def test_tokens_without_an_expiry_get_one_and_the_column_then_refuses_null(old_schema, settings):
    OldPat, OldDataPlaneToken = old_schema
    org = factories.make_organization("Acme")
    admin, control_plane = factories.make_user(org), factories.make_control_plane(org)
    now = timezone.now()
    pat = issue(OldPat, "kpat", user_id=admin.pk, organization_id=org.pk)
    dp = issue(OldDataPlaneToken, "kdpt", control_plane_id=control_plane.pk)
    revoked_at = now - timedelta(days=2)
    revoked = issue(OldPat, "kpat", user_id=admin.pk, organization_id=org.pk, revoked_at=revoked_at)

    upgrade()

    by_text = {text: model.objects.get(digest=token_digest(text))
               for text, model in ((pat, PersonalAccessToken), (dp, DataPlaneToken), (revoked, PersonalAccessToken))}
    days_left = [round((by_text[text].expires_at - now) / timedelta(days=1)) for text in (pat, dp)]
    assert days_left == [settings.ACCESS_TOKEN_DEFAULT_DAYS, settings.DATA_PLANE_TOKEN_DEFAULT_DAYS]
    assert by_text[revoked].expires_at == revoked_at  # already dead: it expires when it was revoked
    assert tokens.personal_access_token_authenticate(pat) is not None  # nothing stops working at upgrade time
    assert tokens.data_plane_token_authenticate(dp) is not None
    assert tokens.personal_access_token_authenticate(revoked) is None
    for model in (PersonalAccessToken, DataPlaneToken):
        with pytest.raises(IntegrityError), transaction.atomic():
            model.objects.filter(pk=by_text[pat if model is PersonalAccessToken else dp].pk).update(expires_at=None)
