"""API tokens: which environment a bearer token belongs to. Only hashes are kept."""

from __future__ import annotations

import hashlib


def _digest(token: str) -> bytes:
    # BLAKE2s: a cryptographic hash, and for strings this short the quickest in hashlib.
    return hashlib.blake2s(token.encode()).digest()


class TokenRegistry:
    def __init__(self, pairs: dict[str, str]) -> None:
        self._by_hash = {_digest(token): env for token, env in pairs.items() if token}

    @classmethod
    def from_settings(cls, api_tokens: str, dev_api_token: str | None) -> TokenRegistry:
        """`api_tokens` is `token:environment,token:environment`; the dev token maps to `dev`."""
        pairs: dict[str, str] = {}
        for item in api_tokens.split(","):
            item = item.strip()
            if not item:
                continue
            token, sep, environment = item.rpartition(":")
            if not sep or not token or not environment:
                raise ValueError("API_TOKENS entries must look like token:environment_id")
            pairs[token.strip()] = environment.strip()
        if dev_api_token:
            pairs[dev_api_token] = "dev"
        return cls(pairs)

    def environment_for(self, authorization: str | None) -> str | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        # A lookup by digest reveals nothing usable about the token's bytes.
        return self._by_hash.get(_digest(token.strip()))
