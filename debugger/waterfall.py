"""The span waterfall of a trace, laid out on the server: one row per span, bars in SVG user units."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 1000  # SVG viewBox width; bars are positioned in these units
MIN_BAR = 2.0  # so an instant span stays visible
MAX_INDENT = 8
TICKS = 4


@dataclass(frozen=True, slots=True)
class Bar:
    span: object
    depth: int
    x: float
    width: float
    offset_ms: float
    duration_ms: float
    category: str

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_INDENT)

    @property
    def tooltip(self) -> str:
        return f"{self.span.name}: {self.duration_ms:.3f} ms, starting at +{self.offset_ms:.3f} ms"


@dataclass(frozen=True, slots=True)
class Waterfall:
    bars: list[Bar]
    total_ms: float
    ticks: list[tuple[float, str]]
    width: int = WIDTH


def span_category(name: str) -> str:
    """phase | plugin | router | upstream | dns | root | other — each drawn in its own colour."""
    if name == "kong":
        return "root"
    if ".plugin." in name:
        return "plugin"
    if name.startswith("kong.phase."):
        return "phase"
    if name.startswith("kong.router"):
        return "router"
    if name.startswith(("kong.upstream", "kong.balancer")):
        return "upstream"
    if name.startswith("kong.dns"):
        return "dns"
    return "other"


def waterfall(spans) -> Waterfall:
    spans = list(spans)
    if not spans:
        return Waterfall(bars=[], total_ms=0.0, ticks=[])
    start = min(span.start_ns for span in spans)
    total_ns = max(max(span.end_ns for span in spans) - start, 1)
    bars = [
        Bar(
            span=span,
            depth=depth,
            x=round((span.start_ns - start) / total_ns * WIDTH, 2),
            width=round(max((span.end_ns - span.start_ns) / total_ns * WIDTH, MIN_BAR), 2),
            offset_ms=(span.start_ns - start) / 1e6,
            duration_ms=(span.end_ns - span.start_ns) / 1e6,
            category=span_category(span.name),
        )
        for span, depth in _tree_order(spans)
    ]
    for index, bar in enumerate(bars):  # keep bars inside the box when MIN_BAR pushed one past the end
        if bar.x + bar.width > WIDTH:
            bars[index] = Bar(bar.span, bar.depth, round(WIDTH - bar.width, 2), bar.width, bar.offset_ms,
                              bar.duration_ms, bar.category)
    total_ms = total_ns / 1e6
    ticks = [(WIDTH * i / TICKS, f"{total_ms * i / TICKS:.1f} ms") for i in range(TICKS + 1)]
    return Waterfall(bars=bars, total_ms=total_ms, ticks=ticks)


def _tree_order(spans) -> list[tuple[object, int]]:
    """Depth-first, children by start time; spans whose parent is missing are roots."""
    ids = {span.span_id for span in spans}
    children: dict[str, list] = {}
    roots = []
    for span in sorted(spans, key=lambda s: (s.start_ns, s.end_ns)):
        if span.parent_span_id and span.parent_span_id in ids and span.parent_span_id != span.span_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    ordered, seen = [], set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        ordered.append((span, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, [])))
    ordered += [(span, 0) for span in spans if span.span_id not in seen]  # cycles: still shown
    return ordered
