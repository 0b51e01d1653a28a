"""The body checks both JSON APIs share (generation.json_api)."""

from __future__ import annotations

import sys

from generation.json_api import unencodable_path


def test_the_first_unencodable_string_is_named_by_its_path():
    body = {"a": "fine", "b": [{"c": "ok"}, {"d": "x\ud800", "e": "\udfff"}], "f": "\ud800"}
    assert unencodable_path(body) == "b[1].d"  # in document order
    assert unencodable_path({"ok": ["a smile \U0001f600", 1, None, True]}) is None
    assert unencodable_path("\ud800") == ""
    assert unencodable_path({"stop": ["x", {"\ud800": 1}]}) == "stop[1]"  # a key: its object


def test_a_value_nested_near_the_parsers_limit_is_walked_without_recursion():
    deep: object = "\ud800"
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    path = unencodable_path(deep)
    assert path is not None
    assert path == "[0]" * (sys.getrecursionlimit() * 2)
