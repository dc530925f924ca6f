"""Events are the one currency: every event type is declared in nbchat/events.py, a
transport yields events and keeps nothing, and a reply is the fold of its events."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nbchat import events
from nbchat.client import Completion, Transport
from nbchat.settings import Settings
from nbchat.testing.server import StandInServer
from nbchat.transports import chat as wire
from nbchat.transports.shape import stream_class

PACKAGE = Path(__file__).resolve().parent.parent / "nbchat"


def test_every_event_type_is_declared_in_the_events_module() -> None:
    # an event is a class whose ``kind`` is a fixed name: the view method that paints it is on_<kind>
    elsewhere = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "testing" in path.parts or path.name == "events.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(_names_its_kind(f) for f in node.body):
                elsewhere.append(f"{path.name}: {node.name}")
    assert elsewhere == []
    kinds = {getattr(events, name).__name__ for name in events.__all__}
    assert {"TextDelta", "ReasoningDelta", "ToolEvent", "ImagePartial", "ImageDone", "Replayed"} <= kinds


def _names_its_kind(node: ast.AST) -> bool:
    """``def kind(self): return "text"`` (a property naming a fixed kind)."""
    if not isinstance(node, ast.FunctionDef) or node.name != "kind" or len(node.body) != 1:
        return False
    body = node.body[0]
    return isinstance(body, ast.Return) and isinstance(body.value, ast.Constant)


@pytest.mark.parametrize("stream", [True, False])
def test_a_reply_is_the_fold_of_the_chat_transports_events(server: StandInServer, stream: bool) -> None:
    client = Transport().client(Settings(base_url=server.url, api_key="sk-test"))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}], "n": 2}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    sent = dict(body)
    arrived = list(wire.read(client, body, stream_class()))
    assert body == sent, "the transport changes nothing it was given"
    kinds = [e.kind for e in arrived]
    assert kinds == (["chunk"] * (len(kinds) - 1) + ["stream_end"] if stream else ["whole"])
    completion = Completion()
    painted = [delta for event in arrived for delta in completion.fold(event)]
    assert {d.kind for d in painted} == {"text"}
    assert "".join(d.text for d in painted if d.choice == 0) == completion.texts[0] == "Echo: hi there"
    assert completion.texts[1] == "Echo: hi there (choice 2)"
    assert completion.usage is not None and completion.usage["completion_tokens"] > 0
    again = Completion()
    for event in arrived:
        list(again.fold(event))
    assert again.texts == completion.texts and again.usage == completion.usage, (
        "the same events, the same reply"
    )


@pytest.mark.parametrize("stream", [True, False])
def test_a_completion_is_the_fold_of_the_completions_transports_events(
    server: StandInServer, stream: bool
) -> None:
    from nbchat.transports import completions

    client = Transport().client(Settings(base_url=server.url, api_key="sk-test"))
    body: dict[str, object] = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon", "max_tokens": 8}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    sent = dict(body)
    arrived = list(completions.read(client, body, stream_class()))
    assert body == sent, "the transport changes nothing it was given"
    folded = [Completion(), Completion()]
    painted = [[d.text for e in arrived for d in completions.fold(c, e, body)] for c in folded]
    assert painted[0] == painted[1] and "".join(painted[0]) == folded[0].texts[0] != ""
    assert folded[0].usage == folded[1].usage and folded[0].usage is not None


@pytest.mark.parametrize("stream", [True, False])
def test_a_response_is_the_fold_of_the_responses_transports_events(
    server: StandInServer, stream: bool
) -> None:
    from nbchat.transports import responses

    client = Transport().client(Settings(base_url=server.url, api_key="sk-test"))
    body: dict[str, object] = {"model": "gpt-4o-mini", "input": [{"role": "user", "content": "hi there"}]}
    if stream:
        body["stream"] = True
    sent = dict(body)
    arrived = list(responses.read(client, body, stream_class()))
    assert body == sent, "the transport changes nothing it was given"
    folded = [Completion(), Completion()]
    painted = [[d.text for e in arrived for d in responses.fold(c, e, body)] for c in folded]
    assert painted[0] == painted[1] and "".join(painted[0]) == folded[0].texts[0] == "Echo: hi there"
    assert folded[0].done and folded[0].usage == folded[1].usage


@pytest.mark.parametrize("stream", [True, False])
def test_a_drawing_is_the_fold_of_the_images_transports_events(server: StandInServer, stream: bool) -> None:
    from nbchat.images import Drawing
    from nbchat.transports import images

    client = Transport().client(Settings(base_url=server.url, api_key="sk-test"))
    body: dict[str, object] = {"model": "gpt-image-1", "prompt": "a lighthouse", "size": "1024x1024"}
    if stream:
        body |= {"stream": True, "partial_images": 1}
    sent = dict(body)
    arrived = list(images.read(client, body, stream_class()))
    assert body == sent, "the transport changes nothing it was given"
    drawings = [Drawing(None), Drawing(None)]
    painted = [[e.kind for event in arrived for e in images.fold(d, event, body)] for d in drawings]
    assert painted[0] == painted[1] and painted[0][-1] == "image"
    assert drawings[0].images == drawings[1].images and len(drawings[0].images) == 1
