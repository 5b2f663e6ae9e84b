"""The sampling-rule language: a hand-written parser that never evaluates code and only raises ParseError."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debugger import sampling
from debugger.sampling import (
    AllOf,
    AnyOf,
    Comparison,
    Not,
    ParseError,
    check_rule,
    normalize,
    parse,
    rule_matches,
)

REQUEST = {"http.method": "POST", "http.path": "/orders/42", "http.host": "api.test",
           "http.response.status_code": 503, "latency.total_ms": 120, "route.name": "orders",
           "route.id": "r-1", "service.name": "orders-svc", "http.request.header.x-tenant": "acme"}


@pytest.mark.parametrize(("rule", "matches"), [
    ("http.response.status_code==503", True),
    ("http.response.status_code == 200", False),
    ('http.method=="POST" && http.path ^= "/orders"', True),
    ('http.method == "GET" || http.path =^ "/42"', True),
    ('http.path contains "ders/4"', True),
    ('!(route.name == "orders")', False),
    ("latency.total_ms >= 100 && latency.total_ms < 200", True),
    ('http.request.header.x-tenant == "acme"', True),
    ('http.request.header.x-missing != "x"', True),
    ('http.request.header.x-missing == "x"', False),
    ('(http.method == "GET" || http.method == "PUT") && http.response.status_code > 500', False),
    ('http.method == "POST" && (http.response.status_code == 500 || http.response.status_code == 503)', True),
    ('!!(http.response.status_code == 503)', True),
])
def test_rules_match_requests(rule, matches):
    assert parse(rule).matches(REQUEST) is matches


def test_and_binds_tighter_than_or():
    node = parse('http.method == "GET" || http.method == "POST" && http.response.status_code == 200')
    assert isinstance(node, AnyOf) and isinstance(node.operands[1], AllOf)
    assert node.matches(REQUEST) is False


@pytest.mark.parametrize(("rule", "message", "position"), [
    ("http.response.status_code = 503", "takes one of", 26),
    ("http.response.status_code == 99", "between 100 and 599", 29),
    ('http.response.status_code == "503"', "whole number", 29),
    ("http.method == POST", "quoted string", 15),
    ('http.method == "post"', "upper case", 15),
    ('http.path ~ "^/orders"', "regular expressions", 10),
    ('http.path == "/x', "unterminated string", 13),
    ('http.path == "a\\qb"', "unknown escape", 15),
    ("body contains \"card\"", "unknown field 'body'", 0),
    ('http.request.header.X-Up == "1"', "header names are lower case", 0),
    ('(http.method == "GET"', "missing ')'", 0),
    ('http.method == "GET")', "unexpected ')'", 20),
    ('http.method == "GET" &&', "end of rule", 23),
    ("", "empty", 0),
    ("http.response.status_code == 1234567890", "number too large", 29),
    ("__import__('os').system('id')", "unexpected character", 11),
])
def test_errors_say_what_and_where(rule, message, position):
    with pytest.raises(ParseError) as excinfo:
        parse(rule)
    assert message in excinfo.value.message
    assert excinfo.value.position == position
    assert f"(at character {position + 1})" in str(excinfo.value)


def test_limits():
    with pytest.raises(ParseError, match="at most 1024"):
        parse('http.path == "' + "x" * 1100 + '"')
    with pytest.raises(ParseError, match="nested more than"):
        parse("(" * 40 + "http.response.status_code == 200" + ")" * 40)
    with pytest.raises(ParseError, match="nested more than"):
        parse("!" * 40 + "http.response.status_code == 200")
    with pytest.raises(ParseError, match="more than 32 comparisons"):
        parse("||".join(["latency.kong_ms<1"] * 33))


def test_normalize_gives_one_spelling():
    assert normalize('http.method=="POST"&&http.path^="/o\\"x"') == 'http.method == "POST" && http.path ^= "/o\\"x"'
    assert normalize('!(a.b == 1)'.replace("a.b", "latency.kong_ms")) == "!(latency.kong_ms == 1)"


def test_session_rules():
    assert check_rule("none", "anything") == ""
    assert check_rule("route", " orders-v2 ") == "orders-v2"
    assert check_rule("service", "3f1c2e9a-0000-4000-8000-000000000001")
    with pytest.raises(ParseError):
        check_rule("route", "has space")
    with pytest.raises(ParseError):
        check_rule("expression", "http.method ==")
    with pytest.raises(ParseError):
        check_rule("sql", "x")
    assert rule_matches("none", "", {}) is True
    assert rule_matches("route", "orders", REQUEST) and rule_matches("route", "r-1", REQUEST)
    assert not rule_matches("service", "other", REQUEST)
    assert rule_matches("expression", "latency.total_ms > 100", REQUEST)


# --- properties -----------------------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_parse_error(text):
    try:
        node = parse(text)
    except ParseError as error:
        assert 0 <= error.position <= max(len(text), sampling.MAX_LENGTH)
        return
    assert isinstance(node, Comparison | Not | AllOf | AnyOf)


TOKENS = st.sampled_from(['http.method', 'http.response.status_code', '==', '!=', '>=', '^=', 'contains', '&&',
                          '||', '!', '(', ')', '"POST"', '"/x"', '503', '~', 'route.name', '"', '\\', ' '])


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=25))
def test_token_soup_parses_or_raises_parse_error(tokens):
    try:
        parse(" ".join(tokens))
    except ParseError:
        pass


TEXT_FIELDS = st.sampled_from(sorted(sampling.TEXT_FIELDS))
NUMBER_FIELDS = st.sampled_from(sorted(sampling.NUMBER_FIELDS))
text_comparisons = st.builds(Comparison, TEXT_FIELDS, st.sampled_from(sampling.TEXT_OPERATORS),
                             st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2fff), max_size=20)
                             .map(str.upper))
number_comparisons = st.builds(Comparison, NUMBER_FIELDS, st.sampled_from(sampling.NUMBER_OPERATORS),
                               st.integers(100, 599))


def _combine(inner):
    operands = st.lists(inner, min_size=2, max_size=3).map(tuple)
    return st.one_of(st.builds(Not, inner), st.builds(AllOf, operands), st.builds(AnyOf, operands))


rules = st.recursive(text_comparisons | number_comparisons, _combine, max_leaves=8)
facts = st.dictionaries(st.sampled_from(sorted(sampling.TEXT_FIELDS | sampling.NUMBER_FIELDS)),
                        st.one_of(st.none(), st.integers(), st.text(max_size=10), st.booleans(), st.floats()))


def _well_formed(node) -> bool:
    """Rules whose text form stays within the parser's limits, with upper-case methods."""
    if isinstance(node, Comparison):
        return node.field != "http.method" or (isinstance(node.value, str) and node.value.isupper())
    operands = (node.operand,) if isinstance(node, Not) else node.operands
    return all(_well_formed(operand) for operand in operands)


@settings(max_examples=300, deadline=None)
@given(rules, facts)
def test_generated_rules_round_trip_and_evaluate_without_raising(node, request_facts):
    if not _well_formed(node):
        return
    source = node.source()
    reparsed = parse(source)
    assert reparsed.source() == source
    assert reparsed.matches(request_facts) == parse(reparsed.source()).matches(request_facts)
