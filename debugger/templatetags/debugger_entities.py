"""A route, service or consumer as the Debugger shows it: its name when the trace's spans carry one, else its id
shortened by CSS (the whole id stays in the text, so selecting copies it, and in the title).

A tag rather than an included template: the traces table shows two per row, and an include per cell costs more
than the rest of the row (a template render with its own context each time)."""

from django import template
from django.utils.html import format_html

register = template.Library()

COPY_BUTTON = ' <button type="button" class="copy-button" data-copy-target="{}" aria-label="Copy the id" hidden>Copy id</button>'


@register.simple_tag
def entity(entity_id: str, name: str = "", copy_id: str = "") -> str:
    """`copy_id`: the element id of a Copy button's source (the trace page); without it, no button (table cells)."""
    if not entity_id:
        return "—"
    if name:
        html = format_html('<span class="debugger-entity" title="id {}">{}</span>', entity_id, name)
        if copy_id:
            html += format_html(' <code class="debugger-id" id="{}">{}</code>', copy_id, entity_id)
    elif copy_id:
        html = format_html('<code class="debugger-id debugger-short-id" title="{}" id="{}">{}</code>', entity_id,
                           copy_id, entity_id)
    else:
        html = format_html('<code class="debugger-id debugger-short-id" title="{}">{}</code>', entity_id, entity_id)
    return html + format_html(COPY_BUTTON, copy_id) if copy_id else html
