"""'Forgot your password?' on the login page: Django's reset flow in the app's pages, silent about which
addresses have accounts, one e-mail per address per interval, audited, and a link that works once."""

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from konnect_admin.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-long-new-passphrase-8841"


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/password-reset/\S+/)", message.body).group(1)


def test_a_user_resets_their_own_password_through_the_emailed_link(client, org):
    user = factories.make_role_user(org, "org_admin")
    login_page = client.get(reverse("login")).content.decode()
    assert f'href="{reverse("password_reset")}"' in login_page
    form = client.get(reverse("password_reset"))
    assert form.status_code == 200 and 'name="email"' in form.content.decode()

    response = client.post(reverse("password_reset"), {"email": user.email})
    assert response.status_code == 302 and response.url == reverse("password_reset_sent")
    assert "Check your e-mail" in client.get(response.url).content.decode()
    [message] = mail.outbox
    assert message.to == [user.email] and "asked on the log-in page" in message.body
    event = AuditEvent.objects.get(action="user.password_reset_requested")
    assert event.organization == org and event.actor is None and event.target_id == str(user.pk)

    link = link_in(message)
    confirm = client.get(link, follow=True)
    assert "Set your password" in confirm.content.decode()
    done = client.post(confirm.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done.url == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    again = client.get(link, follow=True).content.decode()  # the link works once
    assert "This link is invalid" in again


def test_an_unknown_address_gets_the_same_answer_and_no_email(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@nowhere.test"})
    assert response.status_code == 302 and response.url == reverse("password_reset_sent")
    assert mail.outbox == []


def test_one_email_per_address_per_interval(client, org, settings):
    user = factories.make_role_user(org, "org_admin")
    for _ in range(5):
        assert client.post(reverse("password_reset"), {"email": user.email.upper()}).status_code == 302
    assert len(mail.outbox) == 1
    assert AuditEvent.objects.filter(action="user.password_reset_requested").count() == 1


def test_a_deactivated_account_gets_no_link(client, org):
    user = factories.make_role_user(org, "org_admin")
    user.is_active = False
    user.save(update_fields=["is_active"])
    client.post(reverse("password_reset"), {"email": user.email})
    assert mail.outbox == []


def test_an_invalid_address_is_a_form_error_not_a_500(client):
    response = client.post(reverse("password_reset"), {"email": "not an address"})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode() and mail.outbox == []
