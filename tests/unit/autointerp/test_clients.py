import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from interplab.autointerp.clients import LocalHFClient, OpenAICompatibleClient, plain_chat_prompt
from interplab.autointerp.serve import serve_client
from interplab.common import InterplabError

MESSAGES = [{"role": "user", "content": "Say hi"}]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Broken:
    name = "broken"

    def complete(self, messages, max_tokens=None):
        raise RuntimeError("model exploded")


def _one_line_error(client):
    with pytest.raises(InterplabError) as info:
        client.complete(MESSAGES)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_connection_refused_is_one_line_naming_the_server_command():
    message = _one_line_error(OpenAICompatibleClient(f"http://127.0.0.1:{_free_port()}"))
    assert "cannot reach" in message and "interplab explain-server" in message


def test_a_server_error_is_one_line_with_the_status_code():
    with serve_client(_Broken()) as server:
        message = _one_line_error(OpenAICompatibleClient(server.url + "/v1"))
    assert "HTTP 500" in message and "model exploded" in message


def test_a_reply_that_is_not_openai_json_is_one_line_naming_the_fix():
    class NotOpenAI(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), NotOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        message = _one_line_error(OpenAICompatibleClient(f"http://127.0.0.1:{httpd.server_address[1]}"))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "OpenAI-compatible" in message


def test_a_non_http_endpoint_is_rejected_up_front():
    with pytest.raises(InterplabError, match="http"):
        OpenAICompatibleClient("127.0.0.1:8000")


def test_plain_prompt_for_base_models_ends_with_the_assistant_turn():
    assert plain_chat_prompt(MESSAGES) == "User: Say hi\n\nAssistant:"


def test_local_model_answers_through_the_real_server(gpt2):
    local = LocalHFClient(gpt2)
    with serve_client(local) as server:
        reply = OpenAICompatibleClient(server.url).complete(MESSAGES, max_tokens=5)
    assert isinstance(reply, str) and reply == local.complete(MESSAGES, max_tokens=5)


def test_local_client_uses_the_chat_template_when_the_tokenizer_has_one(gpt2):
    tok = gpt2.tokenizer
    template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"
    old = getattr(tok, "chat_template", None)
    tok.chat_template = template
    try:
        ids = LocalHFClient(gpt2).prompt_ids(MESSAGES)
    finally:
        tok.chat_template = old
    assert tok.decode(ids[0]) == "<user>Say hi<assistant>"
    plain = LocalHFClient(gpt2).prompt_ids(MESSAGES)
    assert tok.decode(plain[0]) == plain_chat_prompt(MESSAGES)


def test_the_server_answers_bad_requests_and_unknown_routes_with_json_errors():
    import httpx

    class Echo:
        name = "echo"

        def complete(self, messages, max_tokens=None):
            return messages[-1]["content"]

    with serve_client(Echo()) as server:
        bad = httpx.post(server.url + "/v1/chat/completions", content=b"not json")
        missing = httpx.get(server.url + "/nope")
        models = httpx.get(server.url + "/v1/models").json()
        echoed = OpenAICompatibleClient(server.url).complete(MESSAGES)
    assert bad.status_code == 400 and "bad request" in bad.json()["error"]["message"]
    assert missing.status_code == 404 and models["data"][0]["id"] == "echo" and echoed == "Say hi"
