from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from konnect_admin import navigation, selectors, services
from konnect_admin.forms import ControlPlaneForm
from konnect_admin.models import Region
from konnect_admin.permissions import Action, can, require
from konnect_admin.views.pages import paginate, render_page


@require_GET
def control_plane_list(request):
    queryset = selectors.control_plane_list(user=request.user, organization=request.organization)
    query, region = request.GET.get("q", "").strip(), request.GET.get("region", "")
    if query:
        queryset = queryset.filter(name__icontains=query)
    if region in Region.values:
        queryset = queryset.filter(region=region)
    context = {
        "page": paginate(request, queryset),
        "query": query,
        "region": region,
        "regions": Region.choices,
        "can_create": can(request.user, Action.CONTROL_PLANE_CREATE, request.organization),
    }
    return render_page(request, "konnect_admin/control_plane_list.html", context, partial="results")


@require_http_methods(["GET", "POST"])
def control_plane_create(request):
    require(request.user, Action.CONTROL_PLANE_CREATE, request.organization)
    form = ControlPlaneForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        control_plane = services.control_plane_create(
            organization=request.organization, actor=request.user, **form.cleaned_data
        )
        if request.htmx:
            return HttpResponseClientRedirect(control_plane_url(control_plane))
        return redirect(control_plane_url(control_plane))
    status = 422 if form.errors and request.htmx else (400 if form.errors else 200)
    return render_page(request, "konnect_admin/control_plane_form.html", {"form": form}, partial="form", status=status)


@require_GET
def control_plane_detail(request, pk):
    control_plane = selectors.control_plane_get(user=request.user, organization=request.organization, pk=pk)
    context = {
        "control_plane": control_plane,
        "can_admin": can(request.user, Action.CONTROL_PLANE_ADMIN, control_plane),
        "sections": navigation.collect(navigation.CONTROL_PLANE_SECTIONS, request, control_plane),
    }
    return render_page(request, "konnect_admin/control_plane_detail.html", context)


def control_plane_url(control_plane) -> str:
    from django.urls import reverse

    return reverse("control_plane_detail", args=[control_plane.pk])

