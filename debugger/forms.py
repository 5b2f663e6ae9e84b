import re
from functools import lru_cache

from django import forms
from django.template.loader import render_to_string

from debugger.models import (
    DEFAULT_MAX_SAMPLES,
    MAX_DURATION_SECONDS,
    MAX_SAMPLES_LIMIT,
    MIN_DURATION_SECONDS,
    LogLevel,
    SamplingKind,
)
from debugger.sampling import ParseError, check_rule
from debugger.selectors import TraceFilters

HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_STATUS = re.compile(r"[1-5](xx|[0-9]{2})")


class DebugSessionForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="A label, e.g. “checkout 503s”.")
    duration_seconds = forms.IntegerField(
        label="Duration (seconds)", min_value=MIN_DURATION_SECONDS, max_value=MAX_DURATION_SECONDS, initial=300,
        help_text="From 10 seconds to 30 minutes (1800 s), counted from when a data plane starts sampling.",
    )
    sampling_kind = forms.ChoiceField(label="Sampling rule", choices=SamplingKind.choices, initial=SamplingKind.NONE)
    sampling_value = forms.CharField(
        label="Route, service or expression", max_length=1024, required=False,
        help_text='Route or service id/name, or an expression such as '
                  'http.method == "POST" && http.path ^= "/orders" or http.response.status_code == 503.',
    )
    max_samples = forms.IntegerField(min_value=1, max_value=MAX_SAMPLES_LIMIT, initial=DEFAULT_MAX_SAMPLES,
                                     help_text=f"Sampling stops after this many traces (at most {MAX_SAMPLES_LIMIT}).")
    capture_logs = forms.BooleanField(required=False, initial=True, label="Capture request logs")
    capture_request_headers = forms.BooleanField(required=False, initial=True)
    capture_request_body = forms.BooleanField(required=False, initial=True)
    capture_response_headers = forms.BooleanField(required=False, initial=True)
    capture_response_body = forms.BooleanField(required=False, initial=True)

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("sampling_kind")
        value = cleaned.get("sampling_value", "")
        if kind == SamplingKind.NONE:
            cleaned["sampling_value"] = ""
        elif kind and not value.strip():
            self.add_error("sampling_value", f"Give the {SamplingKind(kind).label.lower()} to sample.")
        elif kind:
            try:
                cleaned["sampling_value"] = check_rule(kind, value)
            except ParseError as error:
                self.add_error("sampling_value", f"Invalid sampling rule: {error}")
        return cleaned


class TraceFilterForm(forms.Form):
    """Filters on unencrypted trace metadata only: encrypted payloads cannot be searched."""

    status = forms.CharField(required=False, max_length=3, help_text="503 or 5xx")
    method = forms.ChoiceField(required=False, choices=[("", "Any method"), *[(m, m) for m in HTTP_METHODS]])
    latency_min = forms.FloatField(required=False, min_value=0, label="Latency ≥ (ms)")
    latency_max = forms.FloatField(required=False, min_value=0, label="Latency ≤ (ms)")
    route = forms.CharField(required=False, max_length=64, label="Route id")
    service = forms.CharField(required=False, max_length=64, label="Service id")

    def clean_status(self):
        status = self.cleaned_data["status"].strip().lower()
        if status and not _STATUS.fullmatch(status):
            raise forms.ValidationError("Use a status code such as 503, or a class such as 5xx.")
        return status

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("latency_min"), cleaned.get("latency_max")
        if low is not None and high is not None and low > high:
            self.add_error("latency_max", "Must not be below the minimum.")
        return cleaned

    def filters(self) -> TraceFilters:
        """The valid filters; an invalid field is ignored (and shown with its error)."""
        data = self.cleaned_data if self.is_bound else {}
        valid = {name: data.get(name) for name in self.fields if name not in self.errors}
        return TraceFilters(
            status=valid.get("status") or "",
            method=valid.get("method") or "",
            latency_min_ms=valid.get("latency_min"),
            latency_max_ms=valid.get("latency_max"),
            route_id=(valid.get("route") or "").strip(),
            service_id=(valid.get("service") or "").strip(),
        )


class LogFilterForm(forms.Form):
    level = forms.ChoiceField(required=False, choices=[("", "Any level"), *LogLevel.choices])
    span = forms.RegexField(required=False, regex=r"^[0-9a-f]{16}$", label="Span id",
                            error_messages={"invalid": "A span id is 16 hex digits."})
    trace = forms.RegexField(required=False, regex=r"^[0-9a-f]{32}$", label="Trace id",
                             error_messages={"invalid": "A trace id is 32 hex digits."})

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_bound else {}
        valid = {name: data.get(name) or "" for name in self.fields if name not in self.errors}
        return {"level": valid.get("level", ""), "span_id": valid.get("span", ""), "trace_id": valid.get("trace", "")}


@lru_cache(maxsize=256)
def _trace_filter_fields(values: tuple[tuple[str, str], ...] | None) -> str:
    form = TraceFilterForm(dict(values) if values is not None else None)
    return render_to_string("debugger/includes/filter_fields.html", {"form": form})


def trace_filter_fields(form: TraceFilterForm) -> str:
    """The filter form's fields as HTML, rendered once per distinct set of values (most loads have none).

    Widget templates are a sixth of the session page's time; the output depends only on the submitted
    values of the form's own fields (no token, no user), so it is kept in an LRU of 256 entries."""
    if not form.is_bound:
        return _trace_filter_fields(None)
    return _trace_filter_fields(tuple((name, form.data.get(name, "")) for name in form.fields))
