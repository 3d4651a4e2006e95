"""Pinned model files: a file whose bytes differ from the configured SHA-256 is refused."""

from __future__ import annotations

import hashlib

from rl_deploy.errors import ModelContractError


def verified_sha256(data: bytes, expected: str | None, what: str) -> str:
    """The SHA-256 of `data`; ModelContractError naming `what` when a pin is set and differs.

    Callers hash the bytes they then parse, so the file cannot change between check and use.
    """
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected.strip().lower():
        raise ModelContractError(f"{what}: sha256 {digest} does not match the pinned {expected}")
    return digest
