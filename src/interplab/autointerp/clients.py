"""Explainer LLMs behind one small protocol: a local HF model, or any OpenAI-compatible HTTP endpoint.

Why a protocol and not a framework: explaining and scoring only ever need "chat messages in, text out",
so any backend (transformers, vLLM, llama.cpp server, Ollama, a hosted API, the test's scripted judge
behind a real server) plugs in with one method.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import torch

from interplab.common import InterplabError, get_logger

log = get_logger(__name__)

Messages = Sequence[Mapping[str, str]]


class ExplainerClient(Protocol):
    """Chat completion: a list of {'role', 'content'} messages in, the assistant's reply out."""

    name: str

    def complete(self, messages: Messages, max_tokens: int | None = None) -> str: ...


@dataclass
class ClientConfig:
    """Decoding settings shared by the clients."""

    max_tokens: int = 128
    """Reply length cap: explanations are one sentence, judgements one short list."""
    temperature: float = 0.0
    """0 means greedy: scores then do not change between runs."""
    timeout_s: float = 120.0
    """HTTP timeout per request (a CPU-served model can be slow)."""


def plain_chat_prompt(messages: Messages) -> str:
    """A role-labelled transcript for tokenizers without a chat template (base models)."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"


def chat_prompt_ids(lm: Any, messages: Messages) -> torch.Tensor:
    """Token ids [1, S] of `messages` up to where the assistant's reply starts (chat template if any)."""
    tok: Any = lm.tokenizer  # transformers' stubs type the template output too loosely for mypy
    if getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True, return_tensors="pt")
        ids = ids["input_ids"] if isinstance(ids, Mapping) else ids
        return ids.to(lm.device)
    return tok(plain_chat_prompt(messages), return_tensors="pt")["input_ids"].to(lm.device)


def context_length(lm: Any) -> int | None:
    """The model's position limit, when its config names one."""
    config = lm.model.config
    n_ctx = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return None if n_ctx is None else int(n_ctx)


def load_causal(model: Any, device: str | None, role: str) -> Any:
    """A LoadedModel causal LM from a name, folder or an already loaded one (`role` names it in errors)."""
    from interplab.models.loading import LoadedModel, load_model

    lm = model if isinstance(model, LoadedModel) else load_model(model, kind="causal", device=device)
    if not lm.is_causal:
        raise InterplabError(f"{role} {lm.name} is not a causal LM; pass a chat or base decoder model")
    return lm


class LocalHFClient:
    """A causal LM run in this process with transformers `generate` (chat template when it has one)."""

    def __init__(self, model: Any, cfg: ClientConfig | None = None, device: str | None = None):
        self.lm = load_causal(model, device, "explainer")
        self.cfg = cfg or ClientConfig()
        self.name = f"hf:{Path(str(self.lm.name)).name}"

    def prompt_ids(self, messages: Messages) -> torch.Tensor:
        return chat_prompt_ids(self.lm, messages)

    def complete(self, messages: Messages, max_tokens: int | None = None) -> str:
        ids_1S = self.prompt_ids(messages)
        n_ctx = context_length(self.lm)
        new = max_tokens or self.cfg.max_tokens
        if n_ctx is not None and ids_1S.shape[1] + new > n_ctx:
            ids_1S = ids_1S[:, -(n_ctx - new) :]  # keep the end: the question sits there
        kwargs: dict[str, Any] = {"max_new_tokens": new, "pad_token_id": self.lm.tokenizer.pad_token_id}
        kwargs["do_sample"] = self.cfg.temperature > 0
        if self.cfg.temperature > 0:
            kwargs["temperature"] = self.cfg.temperature
        model: Any = self.lm.model
        with torch.no_grad():
            out_1T = model.generate(input_ids=ids_1S, attention_mask=torch.ones_like(ids_1S), **kwargs)
        return str(self.lm.tokenizer.decode(out_1T[0, ids_1S.shape[1] :], skip_special_tokens=True)).strip()


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat[:limit] + ("..." if len(flat) > limit else "")


class OpenAICompatibleClient:
    """POST {url}/v1/chat/completions, as served by vLLM, llama.cpp, Ollama, `interplab explain-server`..."""

    def __init__(
        self, url: str, model: str = "default", api_key: str | None = None, cfg: ClientConfig | None = None
    ):
        self.base = url.rstrip("/").removesuffix("/chat/completions").removesuffix("/v1")
        if not self.base.startswith(("http://", "https://")):
            raise InterplabError(
                f"endpoint {url!r} is not an http(s) URL; pass e.g. --endpoint http://127.0.0.1:8000"
            )
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.cfg = cfg or ClientConfig()
        self.name = f"openai:{self.base}:{model}"

    @property
    def endpoint(self) -> str:
        return f"{self.base}/v1/chat/completions"

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            return httpx.post(self.endpoint, json=body, headers=headers, timeout=self.cfg.timeout_s)
        except httpx.TimeoutException:
            raise InterplabError(
                f"explainer endpoint {self.endpoint} timed out after {self.cfg.timeout_s:g}s; "
                "raise the timeout or use a smaller explainer model"
            ) from None
        except httpx.HTTPError as exc:
            raise InterplabError(
                f"cannot reach explainer endpoint {self.endpoint} ({type(exc).__name__}); start the server "
                "(e.g. `interplab explain-server --model <folder>`) or fix --endpoint"
            ) from None

    def check(self) -> None:
        """Fail fast (one line) when nothing listens at the URL; any HTTP answer counts as reachable."""
        try:
            httpx.get(f"{self.base}/v1/models", timeout=min(self.cfg.timeout_s, 10.0))
        except httpx.HTTPError as exc:
            raise InterplabError(
                f"cannot reach explainer endpoint {self.endpoint} ({type(exc).__name__}); start the server "
                "(e.g. `interplab explain-server --model <folder>`) or fix --endpoint"
            ) from None

    def complete(self, messages: Messages, max_tokens: int | None = None) -> str:
        body = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens or self.cfg.max_tokens,
            "temperature": self.cfg.temperature,
        }
        response = self._post(body)
        if response.status_code != 200:
            raise InterplabError(
                f"explainer endpoint {self.endpoint} answered HTTP {response.status_code} "
                f"({_one_line(response.text)}); check --endpoint, the model name and the API key"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise InterplabError(
                f"explainer endpoint {self.endpoint} did not return OpenAI chat JSON "
                f"({_one_line(response.text, 80)!r}); point --endpoint at an OpenAI-compatible server"
            ) from None
        return str(content or "").strip()
