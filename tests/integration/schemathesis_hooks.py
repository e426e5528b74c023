"""Schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS).

A client sends a fresh `Idempotency-Key` with each new request; schemathesis draws header values
from a small pool and would send one key with many bodies, which the server rightly answers
422 (`idempotency_key_mismatch`, the IETF draft's answer, shown by tests/unit/views/
test_idempotency.py). A valid key is made unique per request, as a client's is; an invalid one
(negative data) is sent as drawn, so the 400 for a malformed key is still checked.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation

HEADER = "Idempotency-Key"


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = next((name for name in headers if name.lower() == HEADER.lower()), None)
    if key is None or case.meta is None or case.meta.is_negative_at(ParameterLocation.HEADER):
        return
    value = headers[key]
    if isinstance(value, str):
        headers[key] = f"{value[:200]}-{uuid.uuid4().hex}"
