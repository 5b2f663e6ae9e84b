"""The app's URLs plus views that raise, under a page path and an API path, for the error-page tests."""

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404
from django.urls import path

from konnect_admin import urls

# Text that must never reach an error page: what an exception carries is for the log, not for the client.
SECRET_MESSAGE = "exception-text-s3cr3t-never-shown"

RAISES = {
    "400": SuspiciousOperation,
    "403": PermissionDenied,
    "404": Http404,
    "500": RuntimeError,
}


def raising_view(exception_class):
    @login_not_required
    def view(request):
        raise exception_class(SECRET_MESSAGE)

    return view


urlpatterns = [
    *(path(f"test-errors/{status}/", raising_view(exc)) for status, exc in RAISES.items()),
    *(path(f"api/us/v1/test-errors/{status}/", raising_view(exc)) for status, exc in RAISES.items()),
    *urls.urlpatterns,
]
handler400, handler403, handler404, handler500 = urls.handler400, urls.handler403, urls.handler404, urls.handler500
