"""Encryption at rest of embargoed material (the PDF, release and social text).

Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``: authenticated, so
a wrong key or an altered row is detected rather than decrypted into garbage.
``EMBARGO_BOT_KEY`` may hold several comma-separated keys; the first encrypts
and any decrypts (``MultiFernet``), which is what key rotation needs.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from embargo_bot.domain.errors import KeyMismatchError

_KEYGEN_HINT = "run `embargo-bot keygen` and put its line in .env"


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


class Vault:
    """Encrypts and decrypts blobs with the configured at-rest key."""

    def __init__(self, keys: MultiFernet, current: Fernet) -> None:
        self._keys = keys
        self._current = current

    @classmethod
    def from_setting(cls, key: SecretStr | None) -> Vault:
        if key is None or not key.get_secret_value().strip():
            raise KeyMismatchError(f"EMBARGO_BOT_KEY is not set: {_KEYGEN_HINT}")
        parts = [part.strip() for part in key.get_secret_value().split(",") if part.strip()]
        try:
            fernets = [Fernet(part) for part in parts]
            return cls(MultiFernet(fernets), fernets[0])
        except ValueError as exc:
            # The message must not echo the key: it is a secret even when malformed.
            raise KeyMismatchError(
                f"EMBARGO_BOT_KEY is not a valid key (32 url-safe base64 bytes): {_KEYGEN_HINT}"
            ) from exc

    def seal(self, plaintext: bytes) -> bytes:
        return self._keys.encrypt(plaintext)

    def open(self, token: bytes) -> bytes:
        try:
            return self._keys.decrypt(token)
        except InvalidToken as exc:
            raise KeyMismatchError(
                "EMBARGO_BOT_KEY cannot decrypt this store: it is not the key the store was "
                "written with. Restore the original key; nothing has been changed."
            ) from exc

    def is_current(self, token: bytes) -> bool:
        """Whether a token is already under the first (current) key."""
        try:
            self._current.decrypt(token)
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext, re-encrypted under the current key."""
        try:
            return self._keys.rotate(token)
        except InvalidToken as exc:
            raise KeyMismatchError(
                "a stored item cannot be read with any key in EMBARGO_BOT_KEY: keep the old key "
                "after the new one (EMBARGO_BOT_KEY=new,old) until rekey has finished"
            ) from exc
