"""The bearer scheme of the OpenAPI document works as /docs' Authorize button uses it: the
token the login route answers, sent as the scheme says, opens the operations that require it."""

from __future__ import annotations

from typing import Any

import httpx
from openapi_spec_validator import validate

from tests.unit.auth.support import PASSWORD


async def test_the_login_routes_token_authorizes_the_secured_operations(
    http: httpx.AsyncClient, ann: Any
) -> None:
    document = (await http.get("/openapi.json")).json()
    validate(document)
    scheme = document["components"]["securitySchemes"]["BearerAuth"]
    login_path = "/api/v1/auth/login/"
    assert f"POST {login_path}" in scheme["description"]
    login = document["paths"][login_path]["post"]
    assert login["security"] == []
    me = document["paths"]["/api/v1/auth/me/"]["get"]
    assert me["security"] == [{"BearerAuth": []}]

    tokens = (await http.post(login_path, json={"email": ann.email, "password": PASSWORD})).json()
    # What Swagger UI sends for an `http` scheme once the token is pasted into Authorize.
    authorized = {"Authorization": f"{scheme['scheme'].capitalize()} {tokens['access_token']}"}
    assert (await http.get("/api/v1/auth/me/")).status_code == 401
    answer = await http.get("/api/v1/auth/me/", headers=authorized)
    assert answer.status_code == 200
    documented = document["components"]["schemas"]["UserOutput"]
    assert set(documented["required"]) <= set(answer.json())
