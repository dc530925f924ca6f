"""Structured output: every SPEC form, strict json_schema on the wire, reply.data, the table,
the json_object fallback, and a reply that does not match."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import pytest
from conftest import Cell

from nbchat import Chat
from nbchat.magics import ChatMagics
from nbchat.schema import Mismatch, SchemaError, strict, to_schema, validate
from nbchat.testing.server import StandInServer

SHORT = "label, score float, tags list[str]"
EXPECTED_PROPS = {
    "label": {"type": "string"},
    "score": {"type": "number"},
    "tags": {"type": "array", "items": {"type": "string"}},
}


@dataclasses.dataclass
class Label:
    label: str
    score: float
    tags: list[str]


def pydantic_label() -> type[Any]:
    pytest.importorskip("pydantic")
    import pydantic

    class PLabel(pydantic.BaseModel):
        label: str
        score: float
        tags: list[str]

    return PLabel


@pytest.mark.parametrize(
    "spec",
    [
        SHORT,
        "label\nscore float\ntags list[str]",
        {"label": str, "score": float, "tags": list[str]},
        {"label": "str", "score": "float", "tags": "list[str]"},
        {"type": "object", "properties": EXPECTED_PROPS},
        json.dumps({"type": "object", "properties": EXPECTED_PROPS}),
        Label,
    ],
    ids=["short", "short-lines", "dict-types", "dict-words", "json-schema", "json-text", "dataclass"],
)
def test_every_spec_form_becomes_the_same_strict_schema(spec: object) -> None:
    schema = to_schema(spec).json
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["label", "score", "tags"]
    assert {
        k: {kk: vv for kk, vv in v.items() if kk != "title"} for k, v in schema["properties"].items()
    } == (EXPECTED_PROPS)


def test_a_pydantic_class_becomes_a_strict_schema_and_builds_instances() -> None:
    cls = pydantic_label()
    schema = to_schema(cls)
    assert (
        schema.json["required"] == ["label", "score", "tags"] and schema.json["additionalProperties"] is False
    )
    value = schema.parse('{"label": "a", "score": 0.5, "tags": ["x"]}')
    assert isinstance(value, cls) and value.score == 0.5


def test_short_spec_descriptions_and_untyped_fields_are_strings() -> None:
    schema = to_schema("name: the person's name, age int: in years").json
    assert schema["properties"]["name"] == {"type": "string", "description": "the person's name"}
    assert schema["properties"]["age"] == {"type": "integer", "description": "in years"}


def test_nested_refs_are_inlined_and_every_object_is_closed() -> None:
    schema = strict(
        {
            "type": "object",
            "properties": {"who": {"$ref": "#/$defs/P", "description": "d"}},
            "$defs": {"P": {"type": "object", "properties": {"n": {"type": "string"}}}},
        }
    )
    who = schema["properties"]["who"]
    assert "$ref" not in who and who["additionalProperties"] is False and who["required"] == ["n"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("label, score floaty", "unknown type 'floaty'"),
        ("label, label", "appears twice"),
        ("", "names no fields"),
        ("{not json", "not valid JSON"),
        (42, "cannot use int as a schema"),
    ],
)
def test_a_bad_spec_says_what_is_wrong(spec: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        to_schema(spec)


def test_validator_reports_wrong_types_missing_and_extra_fields() -> None:
    schema = to_schema({"label": Literal["pos", "neg"], "score": float}).json
    assert validate({"label": "pos", "score": 1}, schema) == []
    problems = validate({"label": "meh", "extra": 1}, schema)
    assert any("'meh' is not one of" in p for p in problems)
    assert any("missing 'score'" in p for p in problems)
    assert any("unexpected field 'extra'" in p for p in problems)
    assert validate({"label": "pos", "score": "high"}, schema) == [
        "$.score: expected number, got string '\"high\"'"
    ]


def test_send_with_a_schema_sends_strict_json_schema_and_parses_reply_data(server: StandInServer) -> None:
    chat = Chat(base_url=server.url, api_key="sk-test", system="Label things.")
    reply = chat.send("great movie", schema=Label)
    body = server.bodies[-1]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["label", "score", "tags"]
    assert reply.data == Label(label="label: great movie", score=1.1, tags=["tags: great movie"])
    assert json.loads(reply.text)["score"] == 1.1
    assert len(chat.conversation.turns) == 1


def test_a_reply_that_does_not_match_is_a_clear_error_and_nothing_is_recorded(server: StandInServer) -> None:
    chat = Chat(base_url=server.url, api_key="sk-test")
    server.script(text='{"label": "x", "score": "high", "tags": []}')
    with pytest.raises(Mismatch, match=r"\$\.score: expected number"):
        chat.send("hi", schema=SHORT)
    server.script(text="Sure! Here it is")
    with pytest.raises(Mismatch, match="not JSON"):
        chat.send("hi", schema=SHORT)
    assert chat.conversation.turns == []


def test_a_server_that_rejects_json_schema_gets_json_object_once_for_the_session(
    server: StandInServer,
) -> None:
    server.quirks.reject_json_schema = True
    chat = Chat(base_url=server.url, api_key="sk-test", system="Be brief.")
    first = chat.send("one", schema=SHORT)
    second = chat.send("two", schema=SHORT)
    kinds = [b["response_format"]["type"] for b in server.bodies]
    assert kinds == ["json_schema", "json_object", "json_object"], "the fallback is remembered"
    system = server.bodies[-1]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.")
    assert '"required":["label","score","tags"]' in system["content"]
    assert first.data["label"] == "label: one" and second.data["score"] == 0.3
    assert [m["content"] for m in chat.messages if m["role"] == "system"] == ["Be brief."]


def test_schema_cell_shows_a_table_and_o_receives_data(cell: Cell, server: StandInServer) -> None:
    run = cell("%%chat --schema 'label, score float' -o r\nnice")
    assert run.ok, run.error
    assert "| label | label: nice |" in run.markdown and "| score | 0.4 |" in run.markdown
    r = cell.shell.user_ns["r"]
    assert r.data == {"label": "label: nice", "score": 0.4}
    assert server.bodies[-1]["response_format"]["json_schema"]["schema"]["required"] == ["label", "score"]


def test_schema_cell_takes_a_dataclass_from_the_namespace(cell: Cell) -> None:
    cell.shell.user_ns["Label"] = Label
    run = cell("%%chat --schema Label -o r\nok")
    assert run.ok, run.error
    assert cell.shell.user_ns["r"].data == Label(label="label: ok", score=0.2, tags=["tags: ok"])


def test_a_bad_schema_in_a_cell_is_a_usage_error_and_nothing_is_sent(
    cell: Cell, server: StandInServer
) -> None:
    from IPython.core.error import UsageError

    run = cell("%%chat --schema 'a int, b complex'\nhi")
    assert type(run.error) is UsageError and "unknown type 'complex'" in str(run.error)
    assert server.bodies == []


def test_a_mismatching_reply_in_a_cell_fails_the_cell_and_records_nothing(
    cell: Cell, server: StandInServer, magics: ChatMagics
) -> None:
    server.script(text="[1, 2]")
    run = cell("%%chat --schema 'label'\nhi")
    assert not run.ok and "expected object, got array" in str(run.error)
    assert magics.chat_for("default").conversation.turns == []
