"""Residents' personal data in the history: committed to by a salted hash, never the text.

A demand's ``demand.created`` event carries ``personal``: the sha256 (lower-case hex) of the
UTF-8 canonical JSON array ``[salt, resident, contact]`` (``contact`` may be null), where
``salt`` is 32 random hex digits kept in the demand's row next to the name and contact. While
the row holds them, ``verify`` recomputes the hash and so catches any edit of the name, the
contact or the salt. Erasure (PIPL) empties all three and is itself an event
(``demand.erased``); without the salt the commitment cannot be tried against guessed names.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from json.encoder import encode_basestring


def new_salt() -> str:
    return secrets.token_hex(16)


def commitment(salt: str, resident: str | None, contact: str | None) -> str:
    if type(salt) is str and type(resident) is str and (contact is None or type(contact) is str):
        # What json.dumps writes for three texts (the last may be null), joined without its
        # machinery: verify recomputes this for every demand that still holds a name.
        last = "null" if contact is None else encode_basestring(contact)
        text = f"[{encode_basestring(salt)},{encode_basestring(resident)},{last}]"
    else:  # anything else (a hand-edited row may hold anything), as json.dumps writes it
        text = json.dumps(
            [salt, resident, contact], ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
    return hashlib.sha256(text.encode()).hexdigest()
