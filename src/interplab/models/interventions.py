"""Read and edit activations at named hook points, as context managers that always remove their hooks.

    with capture(model, ["blocks.1.resid_post"]) as acts:
        model(**batch)
    acts["blocks.1.resid_post"]            # [batch, seq, d], detached

    with add_vector(model, "blocks.1.resid_post", vector_D, coeff=4.0):
        model.generate(...)

Every editing manager is built on `replace_activation(model, hook, fn)`: `fn` gets the activation
[batch, seq, d] and returns its replacement. Tuple outputs (attention modules, some HF blocks) are handled
here once, so callers always see a plain tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from interplab.common import InterplabError
from interplab.models.hookpoints import HookPoint, resolve_hook

ActivationFn = Callable[[Tensor], Tensor | None]


class Encoder(Protocol):
    """What `splice_sae` needs from a sparse autoencoder."""

    def encode(self, x: Tensor) -> Tensor: ...
    def decode(self, z: Tensor) -> Tensor: ...


def _hook_fn(point: HookPoint, fn: ActivationFn) -> RemovableHandle:
    """Register `fn` on the point's input or output; a non-None return replaces the activation."""
    if point.site == "output":

        def on_output(module: nn.Module, args: Any, output: Any) -> Any:
            tensor = output[0] if isinstance(output, tuple) else output
            new = fn(tensor)
            if new is None:
                return None
            return (new, *output[1:]) if isinstance(output, tuple) else new

        return point.module.register_forward_hook(on_output)

    def on_input(module: nn.Module, args: tuple, kwargs: dict) -> Any:
        # HF blocks take hidden_states positionally in most families and by keyword in some.
        if args:
            new = fn(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        if "hidden_states" not in kwargs:
            raise InterplabError(f"hook {point.name!r}: cannot find the block input (no hidden_states)")
        new = fn(kwargs["hidden_states"])
        return None if new is None else (args, {**kwargs, "hidden_states": new})

    return point.module.register_forward_pre_hook(on_input, with_kwargs=True)


@contextmanager
def replace_activation(model: nn.Module, hook: str, fn: ActivationFn) -> Iterator[None]:
    """Within the block, the activation at `hook` is replaced by `fn(activation)` (None keeps it)."""
    handle = _hook_fn(resolve_hook(model, hook), fn)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def capture(model: nn.Module, hooks: Sequence[str] | str) -> Iterator[dict[str, Tensor]]:
    """Record the activations at `hooks` (detached) into the yielded dict, keyed by hook name.

    A hook hit several times (e.g. once per generated token) keeps the last call.
    """
    names = [hooks] if isinstance(hooks, str) else list(hooks)
    acts: dict[str, Tensor] = {}

    def recorder(name: str) -> ActivationFn:
        def record(x: Tensor) -> None:
            acts[name] = x.detach()

        return record

    with ExitStack() as stack:
        for name in names:
            stack.enter_context(replace_activation(model, name, recorder(name)))
        yield acts


class _StopForward(Exception):
    """Raised inside a hook to skip the rest of the forward pass once all captures are done."""


def run_to_capture(
    model: nn.Module, batch: Mapping[str, Tensor], hooks: Sequence[str] | str
) -> dict[str, Tensor]:
    """Run the forward pass only as far as needed to capture `hooks`; return {hook: [batch, seq, d]}.

    Caching layer 3 of a 24-layer model then costs 4 layers, not 24 (and no unembedding).
    """
    names = [hooks] if isinstance(hooks, str) else list(hooks)
    acts: dict[str, Tensor] = {}

    def recorder(name: str) -> ActivationFn:
        def record(x: Tensor) -> None:
            acts[name] = x.detach()
            if len(acts) == len(names):
                raise _StopForward

        return record

    with ExitStack() as stack:
        for name in names:
            stack.enter_context(replace_activation(model, name, recorder(name)))
        try:
            # no_grad, not inference_mode: inference tensors cannot enter autograd later (probes, SAEs).
            with torch.no_grad():
                model(**batch)
        except _StopForward:
            pass
    missing = [n for n in names if n not in acts]
    if missing:
        raise InterplabError(f"hooks {missing} were never reached by the forward pass")
    return acts


def _position_index(positions: Sequence[int] | None) -> slice | list[int]:
    return slice(None) if positions is None else list(positions)


@contextmanager
def add_vector(
    model: nn.Module,
    hook: str,
    vector_D: Tensor,
    coeff: float = 1.0,
    positions: Sequence[int] | None = None,
) -> Iterator[None]:
    """Add `coeff * vector_D` to the activation at `hook`, at all positions or the given ones.

    Positions index the sequence axis of each forward call (negative ones count from the end); with a
    KV cache, a generation step sees only the new token, so `positions=None` steers every new token.
    """
    index = _position_index(positions)

    def add(x: Tensor) -> Tensor:
        if vector_D.shape[-1] != x.shape[-1]:
            raise InterplabError(f"steering vector has d={vector_D.shape[-1]} but {hook} has d={x.shape[-1]}")
        delta_D = (coeff * vector_D).to(device=x.device, dtype=x.dtype)
        x = x.clone()
        if positions is None:
            x += delta_D
        else:
            valid = [p for p in index if -x.shape[1] <= p < x.shape[1]]  # type: ignore[union-attr]
            x[:, valid] += delta_D
        return x

    with replace_activation(model, hook, add):
        yield


@contextmanager
def ablate(
    model: nn.Module, hook: str, mode: str = "zero", mean_D: Tensor | None = None
) -> Iterator[None]:
    """Replace the activation at `hook` by zeros (`mode="zero"`) or by a mean activation (`mode="mean"`)."""
    if mode not in ("zero", "mean"):
        raise InterplabError(f"ablate: mode must be 'zero' or 'mean', not {mode!r}")
    if mode == "mean" and mean_D is None:
        raise InterplabError("ablate: mode='mean' needs mean_D (the mean activation at the hook)")

    def ablated(x: Tensor) -> Tensor:
        if mode == "zero":
            return torch.zeros_like(x)
        return mean_D.to(device=x.device, dtype=x.dtype).expand_as(x).clone()  # type: ignore[union-attr]

    with replace_activation(model, hook, ablated):
        yield


@contextmanager
def splice_sae(model: nn.Module, hook: str, sae: Encoder) -> Iterator[None]:
    """Replace the activation at `hook` by the SAE's reconstruction `decode(encode(x))`."""

    def reconstruct(x: Tensor) -> Tensor:
        return sae.decode(sae.encode(x)).to(x.dtype)

    with replace_activation(model, hook, reconstruct):
        yield


class Transcoder(Protocol):
    """What `splice_transcoders` needs: the transcoder's output for an input (its `forward(x).x_hat`)."""

    def __call__(self, x: Tensor) -> Any: ...


@contextmanager
def splice_transcoders(model: nn.Module, transcoders: Mapping[int, Transcoder],
                       keep_BS: Tensor | None = None) -> Iterator[None]:
    """Replace each layer's MLP output (`blocks.L.mlp_out`) by its transcoder's prediction from that
    layer's MLP input (`blocks.L.mlp_in`), for the layers in `transcoders` at once; with `keep_BS`
    ([batch, seq] bool) only at those positions (the others keep the MLP's own output)."""
    seen: dict[int, Tensor] = {}

    def reader(layer: int) -> ActivationFn:
        def read(x: Tensor) -> None:
            seen[layer] = x

        return read

    def writer(layer: int, tc: Transcoder) -> ActivationFn:
        def write(out: Tensor) -> Tensor:
            if layer not in seen:
                raise InterplabError(f"blocks.{layer}.mlp_out ran before blocks.{layer}.mlp_in was seen")
            pred = tc(seen.pop(layer))
            pred = getattr(pred, "x_hat", pred).to(out.dtype)
            return pred if keep_BS is None else torch.where(keep_BS[..., None].to(out.device), pred, out)

        return write

    with ExitStack() as stack:
        for layer, tc in transcoders.items():
            stack.enter_context(replace_activation(model, f"blocks.{layer}.mlp_in", reader(layer)))
            stack.enter_context(replace_activation(model, f"blocks.{layer}.mlp_out", writer(layer, tc)))
        yield


@contextmanager
def ablate_mlps(model: nn.Module, layers: Sequence[int], keep_BS: Tensor | None = None) -> Iterator[None]:
    """Zero the MLP output (`blocks.L.mlp_out`) of each of `layers` (with `keep_BS`, only there)."""
    if keep_BS is None:
        with ExitStack() as stack:
            for layer in layers:
                stack.enter_context(ablate(model, f"blocks.{layer}.mlp_out"))
            yield
        return

    def zero(out: Tensor) -> Tensor:
        return torch.where(keep_BS[..., None].to(out.device), torch.zeros_like(out), out)

    with ExitStack() as stack:
        for layer in layers:
            stack.enter_context(replace_activation(model, f"blocks.{layer}.mlp_out", zero))
        yield
