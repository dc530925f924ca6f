"""Works with every OpenAI-compatible server: model-aware parameters, degradation, Azure,
headers and proxies, and the classic config.ini."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
from conftest import Cell, make_shell
from IPython.core.error import UsageError


@pytest.mark.parametrize("model", ["o3", "o4-mini", "o1", "gpt-5", "gpt-5-mini", "o3-2025-04-16"])
def test_reasoning_models_get_max_completion_tokens_and_no_rejected_sampling(cell, server, model) -> None:
    run = cell(f"%%chat -m {model} -t 0.5 --top-p 0.9 --max-tokens 100 --presence-penalty 1 --seed 3\nhi")
    assert run.ok
    body = server.bodies[-1]
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body
    assert not {"temperature", "top_p", "presence_penalty"} & set(body)
    assert body["seed"] == 3
    assert f"not sent to {model}: temperature, top_p, presence_penalty" in run.markdown


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest", "llama3.1:8b"])
def test_other_models_get_every_parameter_as_set(cell, server, model) -> None:
    assert cell(f"%%chat -m {model} -t 0.5 --max-tokens 100\nhi").ok
    body = server.bodies[-1]
    assert (body["temperature"], body["max_tokens"]) == (0.5, 100) and "max_completion_tokens" not in body


def test_a_rejected_parameter_is_named_with_how_to_unset_it(cell, server) -> None:
    server.script(
        status=400,
        error="Unsupported parameter: 'seed' is not supported with this model.",
        param="seed",
        times=2,
    )
    run = cell("%%chat --seed 1\nhi")
    assert "the server refused seed (Unsupported parameter" in run.io.stdout
    assert "asked once more without seed, and that failed too" in run.io.stdout
    assert "parameter 'seed': unset it with %chatconfig seed=unset" in run.io.stdout


def test_no_usage_in_streams_shows_an_offline_estimate(cell, server) -> None:
    server.quirks.no_stream_usage = True
    run = cell("%%chat\nhello there")
    footer = run.markdown.split("<sub>")[1]
    assert "usage not reported" in footer and "≈" in footer and "completion tokens" in footer
    assert run.metadata["usage_estimated"] is True and run.metadata["usage"]["completion_tokens"] > 0


def test_fewer_choices_than_asked_shows_what_came_and_says_so(cell, server) -> None:
    server.quirks.ignore_n = True
    run = cell("%%chat -n 3\ncolour?")
    assert run.ok and "**Choice" not in run.markdown
    assert "asked for 3 choices, the server sent 1" in run.markdown


def test_a_server_without_models_endpoint_gets_a_clear_message(cell, server) -> None:
    server.quirks.no_models = True
    run = cell("%chat models")
    assert "does not list its models" in run.io.stdout and "%chatconfig model=NAME" in run.io.stdout


def test_rejected_stream_options_are_retried_once_without_them(cell, server) -> None:
    server.quirks.reject_stream_options = True
    run = cell("%%chat\nhello")
    assert run.ok and run.markdown.startswith("Echo: hello")
    assert "stream_options" in server.bodies[0] and "stream_options" not in server.bodies[1]
    assert cell("%%chat\nagain").ok
    assert "stream_options" not in server.bodies[-1] and len(server.bodies) == 3  # remembered


def test_no_logprobs_support_says_so(cell, server) -> None:
    server.quirks.no_logprobs = True
    run = cell("%%chat --logprobs 2\nhello")
    assert run.ok and "the server sent no log-probabilities" in run.markdown


@pytest.mark.parametrize("stream", [True, False])
def test_a_missing_finish_reason_is_fine_when_the_reply_completes(cell, server, magics, stream) -> None:
    server.quirks.no_finish_reason = True
    run = cell("%%chat" + ("" if stream else " --no-stream") + "\nhello")
    assert run.ok and run.markdown.startswith("Echo: hello")
    assert len(magics.conversations["default"].turns) == 1


def test_model_ids_that_are_file_paths_and_unknown_chunk_fields_work(cell, server) -> None:
    server.quirks.extra_fields = {"timings": {"predicted_ms": 12.5}, "x_vendor": [1, 2]}
    run = cell('%%chat -m "/models/Llama 3.1 8B.Q4_K_M.gguf"\nhello')
    assert run.ok and run.markdown.startswith("Echo: hello")
    assert server.bodies[-1]["model"] == "/models/Llama 3.1 8B.Q4_K_M.gguf"
    assert "/models/Llama 3.1 8B.Q4_K_M.gguf · " in run.markdown


@pytest.fixture
def azure_env(monkeypatch, server):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-123")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url.removesuffix("/v1"))
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    shell = make_shell()
    yield shell
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()


def test_azure_settings_select_the_azure_client_and_url_shape(azure_env, server) -> None:
    cell = Cell(azure_env)
    assert cell("%chatconfig azure_deployment=my-gpt4o").ok
    run = cell("%%chat\nhello azure")
    assert run.ok and run.markdown.startswith("Echo: hello azure")
    request = server.requests[-1]
    assert request.path == "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == "azure-key-123" and "authorization" not in request.headers


def test_azure_without_a_deployment_uses_the_model_as_deployment(azure_env, server) -> None:
    assert Cell(azure_env)("%%chat -m team-gpt --no-stream\nhello").ok
    assert server.requests[-1].path == "/openai/deployments/team-gpt/chat/completions?api-version=2024-10-21"


def test_azure_without_api_version_is_a_clear_error(azure_env, monkeypatch) -> None:
    cell = Cell(azure_env)
    assert cell("%chatconfig api_version=unset").ok
    assert "Azure OpenAI needs api_version" in cell("%%chat\nhi").io.stdout


def test_default_headers_are_sent(cell, server) -> None:
    assert cell('%chatconfig default_headers={"X-Team": "data-science", "X-Cost-Center": "42"}').ok
    assert cell("%%chat\nhi").ok
    headers = server.requests[-1].headers
    assert headers["x-team"] == "data-science" and headers["x-cost-center"] == "42"


class _Proxy(BaseHTTPRequestHandler):
    """A minimal forward proxy: the request line carries the absolute URL."""

    seen: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        _Proxy.seen.append(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")
        }
        upstream.request("POST", url.path + (f"?{url.query}" if url.query else ""), body, headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status)
        self.send_header("Content-Type", response.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_the_sdks_proxy_environment_variables_keep_working(env, server, monkeypatch) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        shell = make_shell()
        assert Cell(shell)("%%chat --no-stream\nvia the proxy").ok
        assert _Proxy.seen == [f"{server.url}/chat/completions"]
        assert server.bodies[-1]["messages"][-1]["content"] == "via the proxy"
    finally:
        proxy.shutdown()
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.clear_instance()


INI = """[OpenAI]
API_SECRET_KEY = sk-iniSecretKq3Lp9
MODEL = gpt-4o
temperature = 0.3
max_tokens = 256
"""


def test_ini_file_sets_the_key_model_and_settings_without_echoing_the_key(
    cell, server, magics, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    path = tmp_path / "config.ini"
    path.write_text(INI)
    run = cell(f"%chatconfig --ini {path}")
    assert run.ok and "iniSecret" not in run.text and "Kq3L" not in run.text
    assert "api_key (not shown)" in run.text
    assert cell("%%chat\nhi").ok
    assert server.requests[-1].headers["authorization"] == "Bearer sk-iniSecretKq3Lp9"
    body = server.bodies[-1]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4o", 0.3, 256)
    assert magics.origin("model") == f"ini {path}"
    assert "iniSecret" not in cell("%chatconfig").text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[OpenAI]\nMODEL = gpt-4o\ntemprature = 2\n", "unknown setting 'temprature'"),
        ("[OpenAI]\ntemperature = 9\n", "temperature must be a number from 0 to 2"),
        ("[Other]\nMODEL = x\n", "has no [OpenAI] section"),
        ("not an ini file", "cannot read"),
        (None, "no such file"),
    ],
)
def test_a_bad_ini_file_changes_nothing(cell, magics, tmp_path, content, message) -> None:
    path = tmp_path / "config.ini"
    if content is not None:
        path.write_text(content)
    before = magics.trait_values()
    run = cell(f"%chatconfig --ini {path}")
    assert type(run.error) is UsageError and message in str(run.error)
    assert magics.trait_values() == before
