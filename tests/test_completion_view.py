"""A scored prompt (``--completion --echo --logprobs K``) shows its text once, shaded token by
token, and the footer every other cell has (small Markdown, not monospace text)."""

from __future__ import annotations


def test_a_scored_prompt_shows_its_text_once_and_the_usual_footer(cell, server) -> None:
    run = cell("%%chat --completion --echo --logprobs 3 --max-tokens 1\nThe capital of France is Paris")
    assert run.ok, run.error
    last: dict[object, dict[str, str]] = {}
    for k, output in enumerate(run.io.outputs):
        last[(output.transient or {}).get("display_id") or k] = output.data
    shaded, foot = last.values()
    assert "nbchat-logprobs" in shaded["text/html"] and "text/markdown" not in shaded
    assert shaded["text/plain"].startswith("prompt (scored):")
    assert foot["text/markdown"].startswith("<sub>") and "prompt + " in foot["text/markdown"]
    assert foot["text/plain"].startswith("— gpt-3.5-turbo-instruct · ")
    assert run.metadata["model"] == "gpt-3.5-turbo-instruct"
