"""The error pages (urls.py's handler400/403/404/500): the app's styled templates for pages, problem+json for the
JSON API, whose clients read one error shape whatever went wrong.

Pages render Django's default handlers with templates/<status>.html: 400, 403 and 404 with the request (the
navigation of a logged-in user), 500 without one (no context processors, no database: the failure may be there).
"""

import logging

from django.http import HttpResponseServerError
from django.views import defaults

from konnect_admin.problems import is_api_request, problem_response

logger = logging.getLogger(__name__)


def bad_request(request, exception):
    if is_api_request(request):
        return problem_response(status=400, detail="The request is invalid.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if is_api_request(request):
        return problem_response(status=403, detail="You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if is_api_request(request):
        return problem_response(status=404, detail="Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_request(request):
        return problem_response(status=500, detail="Something went wrong on our side.")
    try:
        return defaults.server_error(request)
    except Exception:  # the page itself failed (static files not collected, …): a bare page, never a traceback
        logger.exception("The 500 page could not be rendered")
        return HttpResponseServerError(defaults.ERROR_PAGE_TEMPLATE % {"title": "Server error", "details": ""})
