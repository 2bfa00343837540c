"""Model size as stored and as held: ``torch.save`` bytes and the bytes of the distinct tensors in memory."""

from __future__ import annotations

import io

from whisper_ptq_bench.scope import plain


def serialized_bytes(model) -> int:
    """Bytes of ``torch.save(model.state_dict())``: packed weights, scales, zero points and metadata."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def tensor_bytes(model) -> int:
    """Bytes of the distinct tensors the model's state holds in memory (tensor subclasses flattened)."""
    seen: set[tuple[int, int]] = set()
    total = 0

    def visit(obj) -> None:
        nonlocal total
        import torch

        if isinstance(obj, torch.Tensor):
            flatten = getattr(type(obj), "__tensor_flatten__", None)
            if flatten is not None and not plain(obj) and type(obj) is not torch.nn.Parameter:
                try:
                    names, _ = obj.__tensor_flatten__()
                    for attr in names:
                        visit(getattr(obj, attr))
                    return
                except Exception:  # a subclass without a usable flatten: count it as it reports itself
                    pass
            try:
                key = (obj.data_ptr(), obj.numel())
            except RuntimeError:
                key = (id(obj), obj.numel())
            if key in seen:
                return
            seen.add(key)
            total += obj.numel() * obj.element_size()
        elif isinstance(obj, dict):
            for value in obj.values():
                visit(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                visit(value)

    visit(model.state_dict())
    return total
