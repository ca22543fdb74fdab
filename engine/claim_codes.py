"""Claim codes: short, unguessable, easy to read aloud at the counter."""

from __future__ import annotations

import secrets

# Crockford's base32: no I, L, O or U, so nothing is misread (1/I/L, 0/O) or spells much
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8  # 40 bits: guessing one live code among many is hopeless within a claim's lifetime


def new_claim_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize_claim_code(text: str) -> str | None:
    """What a person typed, as stored: case-insensitive, dashes and spaces ignored, O read as 0, I/L as 1."""
    cleaned = text.upper().replace("-", "").replace(" ", "").translate(str.maketrans("OIL", "011"))
    if len(cleaned) != LENGTH or any(c not in ALPHABET for c in cleaned):
        return None
    return cleaned
