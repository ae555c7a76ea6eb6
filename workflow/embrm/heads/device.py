"""Where a head trains: ``training.device`` resolved against what torch sees."""

from __future__ import annotations

from ..errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``; ``cuda`` must exist."""
    if device not in DEVICES:
        raise ConfigError(
            f"config key 'training.device': unknown device {device!r}; expected one of {DEVICES}"
        )
    if device == "cpu":
        return "cpu"
    available = cuda_available()
    if device == "cuda" and not available:
        raise ConfigError(
            "config key 'training.device': 'cuda' requested but torch sees no CUDA device "
            "(use 'auto' to fall back to the CPU)"
        )
    return "cuda" if available else "cpu"
