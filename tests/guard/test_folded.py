"""guard/folded.py: keys compared as Go's encoding/json compares field names."""

from __future__ import annotations

import copy
import json

import pytest

from guard.errors import InvalidRequestError
from guard.folded import FoldedDict, fold, folded_copy, reading


@pytest.mark.parametrize(
    ("a", "b"),
    [("Content", "content"), ("CONTENT", "content"), ("me\u017f\u017fages", "messages"),
     ("\u212aey", "key"), ("ΣΊΣΥΦΟΣ", "σίσυφος"), ("\u1e9e", "ß")],
)  # fmt: skip
def test_keys_go_takes_for_one_fold_alike(a: str, b: str) -> None:
    assert fold(a) == fold(b)


@pytest.mark.parametrize(("a", "b"), [("content", "contents"), ("ß", "ss"), ("İ", "i")])
def test_keys_go_tells_apart_fold_apart(a: str, b: str) -> None:
    assert fold(a) != fold(b)


def test_a_field_is_found_and_written_under_the_clients_spelling() -> None:
    body = folded_copy({"messages": [{"role": "user", "CONTENT": "hi"}]})
    message = body["messages"][0]
    assert "content" in message
    assert message.get("content") == message["content"] == "hi"
    message["content"] = "rewritten"
    assert json.loads(json.dumps(body)) == {"messages": [{"role": "user", "CONTENT": "rewritten"}]}
    again = copy.deepcopy(body)
    assert isinstance(again["messages"][0], FoldedDict)
    assert again["messages"][0]["content"] == "rewritten"


def test_a_field_looked_up_where_two_keys_fold_alike_to_it_is_refused_and_named() -> None:
    body = folded_copy({"messages": [{"content": "a", "Content": "b"}]})
    assert body["messages"][0]["content"] == "a"  # outside the policies' reading: exact first
    with reading(), pytest.raises(InvalidRequestError) as err:
        body["messages"][0].get("content")
    assert err.value.code == "duplicate_key"
    assert err.value.param == "messages[0].Content"
    with reading(), pytest.raises(InvalidRequestError):
        "CONTENT" in body["messages"][0]  # noqa: B015


def test_keys_that_fold_alike_where_nothing_is_looked_up_by_name_pass() -> None:
    # a JSON schema's properties, metadata: a map's keys, kept apart by Go too
    schema = {"properties": {"id": {"type": "string"}, "ID": {"type": "integer"}}}
    body = folded_copy({"metadata": {"Env": "a", "env": "b"}, "schema": schema})
    with reading():
        assert body.get("metadata") == {"Env": "a", "env": "b"}
        assert list(body["schema"]["properties"]) == ["id", "ID"]
        assert body["metadata"].get("other") is None
