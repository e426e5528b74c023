"""The bearer scheme of the OpenAPI document works as /docs' Authorize button uses it: the
token the login route answers, sent as the scheme says, opens the operations that require it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from core import CoreApp
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


def _documented(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    """A validator of the body `status` of that operation is documented to have."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    # The component's `$ref`s resolve against the document's components.
    return OAS31Validator({**schema, "components": document["components"]})


async def test_error_bodies_are_what_the_document_says(http: httpx.AsyncClient, ann: Any) -> None:
    document = (await http.get("/openapi.json")).json()
    register, me = "/api/v1/auth/register/", "/api/v1/auth/me/"
    answers = [
        # The email is taken: a 409 `unique` naming the field, as documented on register.
        (
            register,
            "post",
            await http.post(register, json={"email": ann.email, "password": PASSWORD}),
        ),
        # A weak password: `detail` maps the field to every reason.
        (
            register,
            "post",
            await http.post(register, json={"email": "b@example.com", "password": "1"}),
        ),
        # Field errors: loc, msg, type.
        (register, "post", await http.post(register, json={"email": "nope", "password": PASSWORD})),
        (register, "post", await http.post(register, json={"password": PASSWORD})),
        (me, "get", await http.get(me)),
    ]
    seen = set()
    for path, method, answer in answers:
        _documented(document, path, method, answer.status_code).validate(answer.json())
        seen.add((answer.status_code, answer.json()["code"]))
    assert seen >= {(409, "unique"), (400, "invalid_password"), (422, "validation_error")}
    assert (401, "not_authenticated") in seen
    unique = answers[0][2].json()
    assert unique["field"] == "email"
    assert answers[1][2].json()["detail"]["password"]
    item = answers[2][2].json()["detail"][0]
    assert item["loc"] == ["body", "email"] and {"msg", "type"} <= set(item)
    assert "WWW-Authenticate" in document["paths"][me]["get"]["responses"]["401"]["headers"]
    assert "unique" in document["paths"][register]["post"]["responses"]["409"]["description"]


@pytest.fixture
def document_of_auth_app(auth_app: CoreApp) -> dict[str, Any]:
    return auth_app.fastapi.openapi()


def test_the_error_envelope_is_a_named_component(document_of_auth_app: dict[str, Any]) -> None:
    schemas = document_of_auth_app["components"]["schemas"]
    envelope = schemas["ErrorBody"]
    assert envelope["required"] == ["detail", "code"]
    detail = envelope["properties"]["detail"]["anyOf"]
    assert {"type": "string"} in detail
    assert {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    } in detail
    item = schemas["FieldError"]
    assert item["required"] == ["loc", "msg", "type"]
    validation = schemas["ValidationErrorBody"]["properties"]["detail"]["anyOf"]
    assert {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}} in validation
