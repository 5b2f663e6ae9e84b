"""The one breadcrumb component: every page that shows where it sits uses it, so all read alike.

    {% load breadcrumbs %}
    {% breadcrumbs %}
      {% crumb "Control planes" "control_plane_list" %}
      {% crumb control_plane.name "control_plane_detail" control_plane.pk %}
      {% crumb "Vault" %}
    {% endbreadcrumbs %}

A crumb names a URL the way `{% url %}` does (a view name and its arguments); one without is plain text. The last
crumb is the current page. The separator is drawn by the stylesheet, the same on every page.
"""

from django import template
from django.template.loader import render_to_string
from django.urls import reverse

register = template.Library()
_CRUMBS = "_breadcrumbs"


class BreadcrumbsNode(template.Node):
    def __init__(self, nodelist):
        self.nodelist = nodelist

    def render(self, context):
        with context.push(**{_CRUMBS: []}):
            self.nodelist.render(context)
            crumbs = context[_CRUMBS]
        return render_to_string("includes/breadcrumbs.html", {"crumbs": crumbs})


class CrumbNode(template.Node):
    def __init__(self, label, viewname=None, args=()):
        self.label, self.viewname, self.args = label, viewname, args

    def render(self, context):
        url = ""
        if self.viewname is not None:
            url = reverse(self.viewname.resolve(context), args=[arg.resolve(context) for arg in self.args])
        context[_CRUMBS].append({"label": self.label.resolve(context), "url": url})
        return ""


@register.tag
def breadcrumbs(parser, token):
    nodelist = parser.parse(("endbreadcrumbs",))
    parser.delete_first_token()
    return BreadcrumbsNode(nodelist)


@register.tag
def crumb(parser, token):
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError("{% crumb label [view_name arg …] %} needs a label.")
    label, *rest = (parser.compile_filter(bit) for bit in bits[1:])
    return CrumbNode(label, rest[0] if rest else None, rest[1:])
