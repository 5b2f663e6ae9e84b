from types import SimpleNamespace

from debugger.waterfall import MIN_BAR, WIDTH, span_category, waterfall


def span(span_id, name, start_ms, end_ms, parent=""):
    return SimpleNamespace(span_id=span_id, parent_span_id=parent, name=name,
                           start_ns=int(start_ms * 1e6), end_ns=int(end_ms * 1e6))


def test_bars_are_placed_in_proportion_and_in_tree_order():
    spans = [
        span("c", "kong.upstream.ttfb", 20, 100, parent="a"),
        span("a", "kong", 0, 100),
        span("b", "kong.phase.access", 5, 15, parent="a"),
        span("d", "kong.access.plugin.key-auth", 6, 8, parent="b"),
    ]
    result = waterfall(spans)
    assert [(bar.span.span_id, bar.depth) for bar in result.bars] == [("a", 0), ("b", 1), ("d", 2), ("c", 1)]
    assert [(bar.x, bar.width) for bar in result.bars] == [(0, 1000), (50, 100), (60, 20), (200, 800)]
    assert result.total_ms == 100
    assert result.ticks[0] == (0, "0.0 ms") and result.ticks[-1] == (WIDTH, "100.0 ms")
    assert result.bars[1].tooltip == "kong.phase.access: 10.000 ms, starting at +5.000 ms"


def test_instant_spans_stay_visible_and_inside_the_box():
    result = waterfall([span("a", "kong", 0, 10), span("b", "kong.phase.log", 10, 10, parent="a")])
    last = result.bars[1]
    assert last.width == MIN_BAR and last.x + last.width <= WIDTH


def test_orphans_and_cycles_are_still_shown():
    spans = [span("a", "x", 0, 1, parent="zzz"), span("b", "y", 1, 2, parent="c"), span("c", "z", 1, 2, parent="b")]
    assert {bar.span.span_id for bar in waterfall(spans).bars} == {"a", "b", "c"}
    assert waterfall([]).bars == []


def test_categories():
    assert [span_category(name) for name in (
        "kong", "kong.phase.access", "kong.access.plugin.rate-limiting", "kong.router", "kong.balancer",
        "kong.upstream.ttfb", "kong.dns", "custom")] == [
        "root", "phase", "plugin", "router", "upstream", "upstream", "dns", "other"]
