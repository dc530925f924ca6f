"""The model sees what the user sees: DataFrames, figures, images, errors, earlier cells and
attached files, each listed in a receipt with its estimated tokens."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from conftest import FAKE_KEY
from images import pdf, png
from IPython.core.error import UsageError

from nbchat.content import text_of, url_info
from nbchat.tokens import estimate


def last_content(server):
    return server.bodies[-1]["messages"][-1]["content"]


def image_parts(content):
    return [p for p in content if p["type"] == "image_url"] if isinstance(content, list) else []


@pytest.fixture
def pd():
    return pytest.importorskip("pandas")


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


# -- values --------------------------------------------------------------------------------


def test_a_dataframe_is_described_by_shape_dtypes_and_first_and_last_rows(cell, server, shell, pd) -> None:
    shell.user_ns["df"] = pd.DataFrame({"city": [f"c{i}" for i in range(1000)], "temp": range(1000)})
    run = cell("%%chat\nWhat stands out in {df}?")
    assert run.ok
    sent = last_content(server)
    assert isinstance(sent, str)
    assert "DataFrame df: 1,000 rows × 2 columns" in sent
    assert f"city ({shell.user_ns['df']['city'].dtype})" in sent  # object, or str from pandas 3 on
    assert "temp (int64)" in sent
    assert "c0" in sent and "c999" in sent and "c500" not in sent
    assert "(990 rows in between not shown)" in sent
    assert sent.startswith("What stands out in ") and sent.endswith("?")


def test_a_huge_dataframe_stays_within_context_tokens_with_a_note(cell, server, shell, pd) -> None:
    wide = pd.DataFrame({f"column_{i}": [f"value {i} " * 20] * 100_000 for i in range(40)})
    shell.user_ns["wide"] = wide
    assert cell("%chatconfig context_tokens=500").ok
    run = cell("%%chat\n{wide}")
    assert run.ok
    sent = last_content(server)
    assert estimate(sent) <= 500
    assert "100,000 rows × 40 columns" in sent
    assert "cut to 500 tokens (context_tokens)" in sent
    (piece,) = run.metadata["context"]
    assert piece["what"] == "wide" and piece["tokens"] <= 500 and "cut to 500 tokens" in piece["note"]


def test_a_series_is_described_with_its_dtype(cell, server, shell, pd) -> None:
    shell.user_ns["s"] = pd.Series(range(100), name="score", dtype="float64")
    assert cell("%%chat\n{s}").ok
    sent = last_content(server)
    assert "Series s (score): 100 values, dtype float64" in sent and "first 5 rows" in sent
    # named as the variable: said once; one value and one row are counted in the singular
    shell.user_ns["score"], shell.user_ns["one"] = pd.Series([1.0], name="score"), pd.DataFrame({"a": [1]})
    assert cell("%%chat\n{score} {one}").ok
    sent = last_content(server)
    assert "Series score: 1 value, dtype float64" in sent and "DataFrame one: 1 row × 1 column" in sent


def test_a_figure_becomes_an_image_part_in_place_scaled_to_image_max_side(cell, server, shell, plt) -> None:
    fig = plt.figure(figsize=(20, 10), dpi=100)  # 2000×1000 px
    plt.plot([1, 3, 2])
    shell.user_ns["fig"] = fig
    run = cell("%%chat\nBefore {fig} after")
    assert run.ok
    sent = last_content(server)
    assert [p["type"] for p in sent] == ["text", "image_url", "text"]
    assert sent[0]["text"] == "Before " and sent[2]["text"] == " after"
    mime, _, pixels = url_info(sent[1]["image_url"]["url"])
    assert mime == "image/png" and pixels == (1024, 512)
    assert run.markdown.startswith("Echo: Before [image/png 1024×512] after")


def test_image_max_side_is_a_setting(cell, server, shell, plt) -> None:
    shell.user_ns["fig"] = plt.figure(figsize=(8, 4), dpi=100)
    assert cell("%chatconfig image_max_side=200").ok
    assert cell("%%chat\n{fig}").ok
    assert url_info(image_parts(last_content(server))[0]["image_url"]["url"])[2] == (200, 100)


def test_pil_ipython_and_repr_png_images_become_image_parts(cell, server, shell) -> None:
    Image = pytest.importorskip("PIL.Image")
    from IPython.display import Image as DisplayImage

    class Plot:
        def _repr_png_(self) -> bytes:
            return png(30, 20)

    shell.user_ns.update(
        pil=Image.new("RGB", (3000, 1500)), shown=DisplayImage(data=png(40, 10)), plot=Plot()
    )
    assert cell("%%chat\n{pil} {shown} {plot}").ok
    sizes = [url_info(p["image_url"]["url"])[2] for p in image_parts(last_content(server))]
    assert sizes == [(1024, 512), (40, 10), (30, 20)]


def test_anything_else_is_str_cut_to_context_tokens(cell, server, shell) -> None:
    shell.user_ns["big"] = list(range(100_000))
    assert cell("%chatconfig context_tokens=300").ok
    assert cell("%%chat\n{big}").ok
    sent = last_content(server)
    assert sent.startswith("[0, 1, 2") and estimate(sent) <= 300
    assert "more characters left out" in sent


def test_a_value_whose_str_raises_is_a_usage_error_and_nothing_is_sent(cell, server, shell) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    shell.user_ns["broken"] = Broken()
    run = cell("%%chat\nlook at {broken}")
    assert type(run.error) is UsageError and "{broken}" in str(run.error)
    assert server.bodies == []


def test_the_key_is_removed_from_substituted_text(cell, server, shell) -> None:
    shell.user_ns["env"] = {"OPENAI_API_KEY": FAKE_KEY, "HOME": "/home/me"}
    assert cell("%%chat\nmy env: {env}").ok
    sent = json.dumps(server.bodies[-1])
    assert FAKE_KEY not in sent and FAKE_KEY[3:11] not in sent
    assert "/home/me" in sent


# -- errors and earlier cells ----------------------------------------------------------


def test_err_is_the_last_traceback_as_plain_text_and_err_n_a_given_one(cell, server, shell) -> None:
    handler_before = (shell.CustomTB, shell.custom_exceptions)
    first = cell("def f():\n    return {}['missing']\nf()")
    assert not first.ok
    count_first = shell.execution_count - 1
    assert not cell("1 / 0").ok
    assert cell("x = 1").ok
    assert cell("%%chat\nWhy? {Err}").ok
    sent = last_content(server)
    assert "ZeroDivisionError: division by zero" in sent and "KeyError" not in sent
    assert "\x1b[" not in sent and "interactiveshell.py" not in sent
    assert cell(f"%%chat\n{{Err[{count_first}]}}").ok
    sent = last_content(server)
    assert "KeyError: 'missing'" in sent and "return {}['missing']" in sent
    assert (shell.CustomTB, shell.custom_exceptions) == handler_before


def test_err_before_any_error_says_so(cell, server) -> None:
    assert cell("%%chat\nlast error: {Err}").ok
    assert "no cell has raised an error" in last_content(server)


def test_context_n_adds_the_previous_cells_with_output_and_error(cell, server, shell) -> None:
    assert cell("a = 6 * 7").ok
    assert cell("a").ok
    assert not cell("a / 0").ok
    assert cell("%%chat\nearlier chat").ok
    assert cell("%%chat --context 2\nWhat went wrong?").ok
    sent = last_content(server)
    assert sent.startswith("<notebook context: the 2 cells run before this message>")
    assert "a = 6 * 7" not in sent  # only two cells
    assert "] In:\na\n" in sent and "] Out:\n42\n" in sent
    assert "] In:\na / 0\n" in sent and "ZeroDivisionError" in sent
    assert "earlier chat" not in sent.split("</notebook context>")[0]
    assert sent.endswith("</notebook context>\n\nWhat went wrong?")
    assert [p["source"] for p in cell("%%chat --context 1\nagain").metadata["context"]] == ["--context"]


def test_context_needs_a_positive_count(cell, server) -> None:
    run = cell("%%chat --context 0\nhi")
    assert type(run.error) is UsageError and server.bodies == []


# -- attachments -----------------------------------------------------------------------


def test_image_and_file_attachments_arrive_as_parts(cell, server, tmp_path) -> None:
    (tmp_path / "chart.png").write_bytes(png(64, 48))
    (tmp_path / "report.pdf").write_bytes(pdf(3))
    line = f"--image {tmp_path / 'chart.png'} --image https://example.com/cat.jpg --file {tmp_path / 'report.pdf'}"
    run = cell(f"%%chat {line}\nCompare these.")
    assert run.ok
    sent = last_content(server)
    assert [p["type"] for p in sent] == ["text", "image_url", "image_url", "file"]
    assert sent[2]["image_url"]["url"] == "https://example.com/cat.jpg"
    assert sent[3]["file"]["filename"] == "report.pdf"
    assert base64.b64decode(sent[3]["file"]["file_data"].split(",", 1)[1]) == pdf(3)
    assert run.markdown.startswith(
        "Echo: Compare these.[image/png 64×48][image https://example.com/cat.jpg][file report.pdf]"
    )


@pytest.mark.parametrize("option", ["--image", "--file"])
def test_a_missing_path_is_a_one_line_usage_error_and_nothing_is_sent(cell, server, tmp_path, option) -> None:
    run = cell(f"%%chat {option} {tmp_path / 'nope.png'}\nhi")
    assert type(run.error) is UsageError
    assert str(run.error) == f"{option} {tmp_path / 'nope.png'}: no such file"
    assert server.bodies == []


def test_detail_low_is_sent_and_estimated_at_85_tokens(cell, server, tmp_path) -> None:
    (tmp_path / "big.png").write_bytes(png(1000, 1000))
    run = cell(f"%%chat --detail low --image {tmp_path / 'big.png'}\nhi")
    assert run.ok
    assert image_parts(last_content(server))[0]["image_url"]["detail"] == "low"
    assert run.metadata["context"][0]["tokens"] == 85
    run = cell(f"%%chat --image {tmp_path / 'big.png'}\nhi")
    assert run.metadata["context"][0]["tokens"] == 765


# -- the receipt -----------------------------------------------------------------------


def test_every_reply_carries_the_receipt_and_the_footer_names_what_was_attached(
    cell, server, shell, tmp_path
) -> None:
    (tmp_path / "notes.txt").write_text("remember the milk")
    shell.user_ns["n"] = 12345
    run = cell(f"%%chat --file {tmp_path / 'notes.txt'}\nn is {{n}}")
    assert run.ok
    receipt = run.metadata["context"]
    assert [(p["what"], p["source"]) for p in receipt] == [("n", "{n}"), ("notes.txt", "--file")]
    assert all(isinstance(p["tokens"], int) and p["tokens"] > 0 for p in receipt)
    assert "context: n, notes.txt (≈" in run.markdown
    plain = cell("%%chat\nno context here")
    assert plain.metadata["context"] == [] and "context:" not in plain.markdown


def test_the_python_api_takes_a_list_of_text_and_objects(env, server) -> None:
    from nbchat import Chat

    class Plot:
        def _repr_png_(self) -> bytes:
            return png(10, 10)

    chat = Chat(model="gpt-4o-mini")
    reply = chat.send(["What is in ", Plot(), "?"])
    assert reply.text == "Echo: What is in [image/png 10×10]?"
    assert [p["kind"] for p in reply.context] == ["image/png 10×10"]
    assert text_of(chat.messages[0]["content"]).startswith("What is in [image/png 10×10, ")


# -- never importing the heavy libraries -----------------------------------------------


def test_nbchat_never_imports_pandas_matplotlib_or_pil(server, tmp_path) -> None:
    (tmp_path / "chart.png").write_bytes(png(3000, 100))
    code = (
        "import sys, json\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "sh.run_line_magic('load_ext', 'nbchat')\n"
        "class Frame:\n"
        "    shape = (3, 1)\n"
        "    columns = ['a']\n"
        "    class dtypes:\n"
        "        @staticmethod\n"
        "        def items(): return [('a', 'int64')]\n"
        "    def head(self, n): return 'rows'\n"
        "    def tail(self, n): return 'rows'\n"
        "sh.user_ns['df'] = Frame()\n"
        f"r = sh.run_cell('%%chat --image {tmp_path / 'chart.png'}\\n{{df}} {{Err}}')\n"
        "print(json.dumps([r.success] + [m in sys.modules for m in ('pandas', 'matplotlib', 'PIL')]))"
    )
    env = {**os.environ, "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-x"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [True, False, False, False]
    sent = server.bodies[-1]["messages"][-1]["content"]
    assert "DataFrame df: 3 rows × 1 column" in sent[0]["text"]
    # without PIL in the session the image is sent as it is, and the receipt says so
    assert url_info(sent[1]["image_url"]["url"])[2] == (3000, 100)


# -- servers ---------------------------------------------------------------------------


def test_a_server_that_rejects_images_gets_a_message_naming_the_part(cell, server, magics, tmp_path) -> None:
    server.quirks.text_only = True
    (tmp_path / "chart.png").write_bytes(png(64, 48))
    assert cell("%%chat\ntext is fine").ok
    run = cell(f"%%chat --image {tmp_path / 'chart.png'}\nWhat is this?")
    assert not run.ok
    message = str(run.error)
    assert "the server rejected the [image/png 64×48, " in message and "in message 3" in message
    assert "image_url is only supported by certain models" in message
    assert "without --image" in message and "unset it with %chatconfig" not in message
    assert len(magics.conversations["default"].turns) == 1


def test_a_chat_cells_own_failure_is_not_the_err_the_model_is_asked_about(cell, server) -> None:
    assert not cell("int('x')").ok
    assert not cell("%%chat --context 0\noops").ok
    assert cell("%%chat\n{Err}").ok
    assert "ValueError: invalid literal for int()" in last_content(server)


def test_a_credential_in_default_headers_is_removed_from_substituted_text(cell, server, shell) -> None:
    token = "Zx81qPw7LmN3vB6tY0rK"
    assert cell(f'%chatconfig default_headers={{"Authorization": "Bearer {token}"}}').ok
    shell.user_ns["config"] = f"auth: Bearer {token}"
    assert cell("%%chat\n{config}").ok
    assert token not in json.dumps(server.bodies[-1]["messages"])


def test_the_stand_in_bills_an_image_by_the_tile_rule(cell, server, tmp_path) -> None:
    (tmp_path / "square.png").write_bytes(png(1024, 1024))
    without = cell("%%chat --no-history\nhi").metadata["usage"]["prompt_tokens"]
    run = cell(f"%%chat --no-history --image {tmp_path / 'square.png'}\nhi")
    assert run.metadata["usage"]["prompt_tokens"] - without == 765


def test_an_axes_sends_its_figure_and_a_linked_display_image_its_url(cell, server, shell, plt) -> None:
    from IPython.display import Image as DisplayImage

    _, ax = plt.subplots(figsize=(4, 2), dpi=100)
    shell.user_ns.update(ax=ax, linked=DisplayImage(url="https://example.com/plot.png"))
    assert cell("%%chat\n{ax} {linked}").ok
    parts = image_parts(last_content(server))
    assert url_info(parts[0]["image_url"]["url"])[2] == (400, 200)
    assert parts[1]["image_url"]["url"] == "https://example.com/plot.png"


def test_a_file_without_a_known_extension_is_sent_as_text_or_binary_by_its_bytes(
    cell, server, tmp_path
) -> None:
    (tmp_path / "notes").write_text("plain words")
    (tmp_path / "blob").write_bytes(bytes(range(256)))
    assert cell(f"%%chat --file {tmp_path / 'notes'} --file {tmp_path / 'blob'}\nhi").ok
    files = [p["file"]["file_data"].split(";")[0] for p in last_content(server) if p["type"] == "file"]
    assert files == ["data:text/plain", "data:application/octet-stream"]


def test_the_dry_run_shows_shortened_data_urls_and_the_receipt_table_and_sends_nothing(
    cell, server, shell, tmp_path
) -> None:
    (tmp_path / "chart.png").write_bytes(png(640, 480))
    shell.user_ns["n"] = 7
    run = cell(f"%%chat --dry-run --image {tmp_path / 'chart.png'}\nn is {{n}}")
    assert run.ok and server.bodies == []
    shown = "\n".join(str(o.get("text/markdown", "")) for o in run.outputs)
    assert "data:image/png;base64,… (" in shown and "640×480 px" in shown and "iVBOR" not in shown
    assert "| context | kind | from | tokens | note |" in shown
    assert "| n | int | {n} | ≈1 |" in shown
    assert "| chart.png | image/png 640×480 | --image | ≈425 |" in shown
    assert "| total |  |  | ≈426 |" in shown
