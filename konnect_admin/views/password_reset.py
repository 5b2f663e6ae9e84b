"""Self-service "Forgot your password?": Django's reset flow, in the app's pages, throttled and audited.

The answer never says whether an address has an account (Django's own rule). Each address receives at most one
link per PASSWORD_RESET_EMAIL_INTERVAL seconds however often the form is posted, so the form cannot be used to
flood somebody's mailbox. The link is the one the operator console sends (same confirm page, same expiry).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.cache import cache
from django.urls import reverse_lazy

from konnect_admin.services import audit_user_event


class ThrottledPasswordResetForm(PasswordResetForm):
    def get_users(self, email):
        key = "konnect_admin:password-reset:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()
        if not cache.add(key, 1, timeout=settings.PASSWORD_RESET_EMAIL_INTERVAL):
            return []  # a link went to this address moments ago
        users = list(super().get_users(email))
        for user in users:
            audit_user_event(actor=None, user=user, action="user.password_reset_requested",
                             details={"via": "login page"})
        return users


password_reset_request = auth_views.PasswordResetView.as_view(
    template_name="konnect_admin/password_reset_form.html",
    form_class=ThrottledPasswordResetForm,
    subject_template_name="konnect_admin/password_reset_subject.txt",
    email_template_name="konnect_admin/password_reset_email.txt",
    extra_email_context={"requested_by_user": True,
                         "timeout_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)},
    success_url=reverse_lazy("password_reset_sent"),
)

password_reset_sent = auth_views.PasswordResetDoneView.as_view(template_name="konnect_admin/password_reset_sent.html")
