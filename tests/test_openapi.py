"""The OpenAPI document: its structure, and real responses checked against it."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from api_helpers import (
    PASSWORD,
    Answer,
    Api,
    BytesBody,
    concrete,
    credentials,
    route_of,
)
from conftest import World
from jsonschema import Draft202012Validator

from chupacabra.gateway._http import MAX_BODY, ROUTES
from chupacabra.gateway._openapi import openapi_document
from chupacabra.testing import MemoryStore

DOC = openapi_document()
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

#: Operations that take a JSON body, as (method, path template).
WITH_BODY = {
    ("POST", "/v1/accounts"),
    ("PUT", "/v1/accounts/me/password"),
    ("POST", "/v1/sessions"),
    ("POST", "/v1/matches/{match}/moves"),
}

#: Statuses the API answers that the document leaves out, as (method,
#: template, status); empty while the document is complete.
UNDOCUMENTED: set[tuple[str, str, int]] = set()
#: Responses with a JSON body that the document gives no content for.
UNDOCUMENTED_CONTENT: set[tuple[str, str, int]] = set()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation in ``doc`` as (METHOD, path, operation)."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def documented() -> set[tuple[str, str, int]]:
    """Every (method, template, status) the document describes."""
    return {
        (method, path, int(status))
        for method, path, operation in operations(DOC)
        for status in operation["responses"]
    }


def strict(schema: Any) -> Any:
    """A copy of ``schema`` in which objects allow no undeclared properties."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copied = {key: strict(value) for key, value in schema.items()}
    if "properties" in copied and "additionalProperties" not in copied:
        copied["additionalProperties"] = False
    return copied


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose root holds the document's components."""
    root = {**strict(copy.deepcopy(schema)), "components": strict(DOC["components"])}
    return Draft202012Validator(
        root, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def conform(answer: Answer) -> None:
    """Check an answer against what the document says of its operation."""
    route = route_of(answer.method, answer.path)
    assert route is not None, answer.path
    key = (route.method, route.template, answer.status)
    operation = DOC["paths"][route.template][route.method.lower()]
    response = operation["responses"].get(str(answer.status))
    assert response is not None, f"{key} is not documented"

    content = response.get("content")
    if answer.media_type is None:
        assert answer.body == b"", key
        assert content is None, f"{key} documents a body but has none"
        return
    if content is None and key in UNDOCUMENTED_CONTENT:
        return
    assert content is not None, f"{key} has a body the document does not give"
    assert answer.media_type in content, (key, answer.media_type, list(content))

    if answer.media_type == "application/json":
        schema = content["application/json"]["schema"]
        errors = sorted(validator(schema).iter_errors(answer.json()), key=str)
        assert not errors, (key, [e.message for e in errors], answer.json())


# The document's structure


def test_document_header() -> None:
    """The document is OpenAPI 3.1 with its info, schemas and bearer scheme."""
    assert re.fullmatch(r"3\.1\.\d+", DOC["openapi"])
    assert isinstance(DOC["info"]["title"], str)
    assert isinstance(DOC["info"]["version"], str)
    assert DOC["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert DOC["components"]["schemas"]


def test_routes_and_paths_agree() -> None:
    """Every route is documented with its method, and the document has no other."""
    routes = {(route.method, route.template) for route in ROUTES}

    described = {(method, path) for method, path, _ in operations(DOC)}

    assert described == routes


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_operation_shape(route: Any) -> None:
    """Each operation has a summary, its path parameters and its security."""
    operation = DOC["paths"][route.template][route.method.lower()]
    names = set(re.findall(r"\{(\w+)\}", route.template))

    parameters = operation.get("parameters", [])

    assert isinstance(operation["summary"], str) and operation["summary"]
    assert {p["name"] for p in parameters if p["in"] == "path"} == names
    assert all(p["required"] is True for p in parameters if p["in"] == "path")
    assert ("security" in operation) == route.auth
    if route.auth:
        assert operation["security"] == [{"bearer": []}]
        assert "401" in operation["responses"]
    assert ("requestBody" in operation) == ((route.method, route.template) in WITH_BODY)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_responses_shape(route: Any) -> None:
    """Each response has a three-digit status and a description."""
    operation = DOC["paths"][route.template][route.method.lower()]

    for status, response in operation["responses"].items():
        assert re.fullmatch(r"[1-5]\d\d", status), status
        assert isinstance(response["description"], str) and response["description"]
        if int(status) >= 400 and route.name != "health":
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, status


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def test_references_resolve() -> None:
    """Every $ref names a schema in components."""
    found = set(references(DOC))

    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in DOC["components"]["schemas"]


def test_schemas_are_valid() -> None:
    """Every schema in the document is a valid JSON Schema 2020-12."""
    for name, schema in DOC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        for required in schema.get("required", []):
            assert required in schema["properties"], (name, required)


def test_served_document(api: Api) -> None:
    """GET /v1/openapi.json serves exactly this document."""
    answer = api.call("GET", "/v1/openapi.json")

    assert answer.json() == DOC


def test_strict_validation_can_fail() -> None:
    """The strict validator rejects undeclared fields and missing ones."""
    check = validator({"$ref": "#/components/schemas/Seek"})
    seek = {"id": "a", "game": "tictactoe", "status": "waiting", "match": None}

    assert check.is_valid(seek)
    assert not check.is_valid({**seek, "extra": 1})
    assert not check.is_valid({**seek, "status": "lost"})
    assert not check.is_valid({k: v for k, v in seek.items() if k != "match"})


# Real responses against the document

Scenario = Callable[[Api], Answer]
SCENARIOS: dict[tuple[str, str, int], Scenario] = {}


def scenario(method: str, template: str, status: int) -> Callable[[Scenario], Scenario]:
    """Register a way to make the API answer ``status`` to that operation."""

    def register(make: Scenario) -> Scenario:
        SCENARIOS[(method, template, status)] = make
        return make

    return register


@pytest.fixture
def api(world: Any) -> Api:
    return Api(world)


def in_match(api: Api) -> tuple[str, str, str]:
    """Alice and Bob in a match: (token to move, the other token, match id)."""
    return api.match(api.account("alice"), api.account("bob"))


def not_json(api: Api, method: str, path: str) -> Answer:
    return api.call(method, path, data=b"{}", headers={"content-type": "text/plain"})


def too_large(api: Api, method: str, path: str) -> Answer:
    body = BytesBody(b" " * (MAX_BODY + 1))
    return api.call(
        method, path, data=body, headers={"content-type": "application/json"}
    )


def malformed(api: Api, method: str, path: str) -> Answer:
    return api.call(
        method, path, data=b"{", headers={"content-type": "application/json"}
    )


@scenario("POST", "/v1/accounts", 201)
def _register(api: Api) -> Answer:
    return api.call("POST", "/v1/accounts", credentials("alice"))


@scenario("POST", "/v1/accounts", 400)
def _register_bad_name(api: Api) -> Answer:
    return api.call("POST", "/v1/accounts", credentials("not a name"))


@scenario("POST", "/v1/accounts", 409)
def _register_taken(api: Api) -> Answer:
    api.register("alice")
    return api.call("POST", "/v1/accounts", credentials("alice"))


@scenario("POST", "/v1/accounts", 413)
def _register_too_large(api: Api) -> Answer:
    return too_large(api, "POST", "/v1/accounts")


@scenario("POST", "/v1/accounts", 415)
def _register_not_json(api: Api) -> Answer:
    return not_json(api, "POST", "/v1/accounts")


PASSWORD_PATH = "/v1/accounts/me/password"


def _change(api: Api, old: str, new: str, token: str | None) -> Answer:
    body = {"old_password": old, "new_password": new}
    return api.call("PUT", PASSWORD_PATH, body, token=token)


@scenario("PUT", PASSWORD_PATH, 200)
def _change_password(api: Api) -> Answer:
    return _change(api, PASSWORD, "new-password", api.account("alice"))


@scenario("PUT", PASSWORD_PATH, 400)
def _change_password_short(api: Api) -> Answer:
    return _change(api, PASSWORD, "short", api.account("alice"))


@scenario("PUT", PASSWORD_PATH, 401)
def _change_password_no_token(api: Api) -> Answer:
    return _change(api, PASSWORD, "new-password", None)


@scenario("PUT", PASSWORD_PATH, 403)
def _change_password_wrong_old(api: Api) -> Answer:
    return _change(api, "wrong-password", "new-password", api.account("alice"))


@scenario("PUT", PASSWORD_PATH, 429)
def _change_password_guessing(api: Api) -> Answer:
    token = api.account("alice")
    for _ in range(20):
        _change(api, "wrong-password", "new-password", token)
    return _change(api, PASSWORD, "new-password", token)


@scenario("POST", "/v1/sessions", 429)
def _log_in_guessing(api: Api) -> Answer:
    api.register("alice")
    for _ in range(20):
        api.call("POST", "/v1/sessions", credentials("alice", "wrong-password"))
    return api.call("POST", "/v1/sessions", credentials("alice"))


@scenario("POST", "/v1/sessions", 201)
def _log_in(api: Api) -> Answer:
    api.register("alice")
    return api.call("POST", "/v1/sessions", credentials("alice"))


@scenario("POST", "/v1/sessions", 400)
def _log_in_missing(api: Api) -> Answer:
    return api.call("POST", "/v1/sessions", {"username": "alice"})


@scenario("POST", "/v1/sessions", 401)
def _log_in_wrong(api: Api) -> Answer:
    api.register("alice")
    return api.call("POST", "/v1/sessions", credentials("alice", "wrong-password"))


@scenario("DELETE", "/v1/sessions/current", 204)
def _log_out(api: Api) -> Answer:
    return api.call("DELETE", "/v1/sessions/current", token=api.account("alice"))


@scenario("DELETE", "/v1/sessions/current", 401)
def _log_out_twice(api: Api) -> Answer:
    token = api.account("alice")
    api.call("DELETE", "/v1/sessions/current", token=token)
    return api.call("DELETE", "/v1/sessions/current", token=token)


@scenario("GET", "/v1/games", 200)
def _games(api: Api) -> Answer:
    return api.call("GET", "/v1/games")


@scenario("GET", "/v1/games", 503)
def _games_down(api: Api) -> Answer:
    api.world.disconnect_service()
    return api.call("GET", "/v1/games")


SEEKS = "/v1/games/{game}/seeks"


@scenario("POST", SEEKS, 201)
def _seek(api: Api) -> Answer:
    return api.call("POST", "/v1/games/tictactoe/seeks", token=api.account("alice"))


@scenario("POST", SEEKS, 401)
def _seek_no_token(api: Api) -> Answer:
    return api.call("POST", "/v1/games/tictactoe/seeks")


@scenario("POST", SEEKS, 404)
def _seek_unknown_game(api: Api) -> Answer:
    return api.call("POST", "/v1/games/chess/seeks", token=api.account("alice"))


@scenario("POST", SEEKS, 503)
def _seek_down(api: Api) -> Answer:
    token = api.account("alice")
    api.world.disconnect_service()
    return api.call("POST", "/v1/games/tictactoe/seeks", token=token)


SEEK = "/v1/seeks/{seek}"


def _waiting(api: Api) -> tuple[str, str]:
    """Alice's token and her waiting seek's path."""
    token = api.account("alice")
    return token, f"/v1/seeks/{api.seek(token)['id']}"


@scenario("GET", SEEK, 200)
def _get_seek(api: Api) -> Answer:
    token, path = _waiting(api)
    return api.call("GET", path, token=token)


@scenario("GET", SEEK, 401)
def _get_seek_no_token(api: Api) -> Answer:
    _, path = _waiting(api)
    return api.call("GET", path)


@scenario("GET", SEEK, 403)
def _get_seek_not_mine(api: Api) -> Answer:
    _, path = _waiting(api)
    return api.call("GET", path, token=api.account("bob"))


@scenario("GET", SEEK, 404)
def _get_seek_unknown(api: Api) -> Answer:
    return api.call("GET", "/v1/seeks/nosuch", token=api.account("alice"))


@scenario("DELETE", SEEK, 200)
def _cancel_seek(api: Api) -> Answer:
    token, path = _waiting(api)
    return api.call("DELETE", path, token=token)


@scenario("DELETE", SEEK, 401)
def _cancel_seek_no_token(api: Api) -> Answer:
    _, path = _waiting(api)
    return api.call("DELETE", path)


@scenario("DELETE", SEEK, 403)
def _cancel_seek_not_mine(api: Api) -> Answer:
    _, path = _waiting(api)
    return api.call("DELETE", path, token=api.account("bob"))


@scenario("DELETE", SEEK, 404)
def _cancel_seek_unknown(api: Api) -> Answer:
    return api.call("DELETE", "/v1/seeks/nosuch", token=api.account("alice"))


@scenario("DELETE", SEEK, 409)
def _cancel_seek_matched(api: Api) -> Answer:
    token, path = _waiting(api)
    api.seek(api.account("bob"))
    return api.call("DELETE", path, token=token)


@scenario("DELETE", SEEK, 503)
def _cancel_seek_down(api: Api) -> Answer:
    token, path = _waiting(api)
    api.world.disconnect_service()
    return api.call("DELETE", path, token=token)


@scenario("GET", "/v1/matches", 200)
def _matches(api: Api) -> Answer:
    first, second, match_id = in_match(api)
    api.call("POST", f"/v1/matches/{match_id}/forfeit", token=second)
    api.match(first, second)
    return api.call("GET", "/v1/matches", token=first)


@scenario("GET", "/v1/matches", 401)
def _matches_no_token(api: Api) -> Answer:
    return api.call("GET", "/v1/matches")


@scenario("GET", "/v1/matches", 503)
def _matches_down(api: Api) -> Answer:
    token = api.account("alice")
    api.world.disconnect_service()
    return api.call("GET", "/v1/matches", token=token)


MATCH = "/v1/matches/{match}"


@scenario("GET", MATCH, 200)
def _match_state(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    return api.call("GET", f"/v1/matches/{match_id}", token=first)


@scenario("GET", MATCH, 401)
def _match_state_no_token(api: Api) -> Answer:
    _, _, match_id = in_match(api)
    return api.call("GET", f"/v1/matches/{match_id}")


@scenario("GET", MATCH, 404)
def _match_state_unknown(api: Api) -> Answer:
    return api.call("GET", "/v1/matches/nosuch", token=api.account("alice"))


@scenario("GET", MATCH, 503)
def _match_state_down(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    api.world.disconnect_service()
    return api.call("GET", f"/v1/matches/{match_id}", token=first)


MOVES = "/v1/matches/{match}/moves"


@scenario("POST", MOVES, 201)
def _move(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    return api.move(first, match_id, 5)


@scenario("POST", MOVES, 400)
def _move_wrong_type(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    return api.move(first, match_id, [5])


@scenario("POST", MOVES, 401)
def _move_no_token(api: Api) -> Answer:
    _, _, match_id = in_match(api)
    return api.call("POST", f"/v1/matches/{match_id}/moves", {"move": 5})


@scenario("POST", MOVES, 404)
def _move_unknown_match(api: Api) -> Answer:
    return api.move(api.account("alice"), "nosuch", 5)


@scenario("POST", MOVES, 409)
def _move_out_of_turn(api: Api) -> Answer:
    _, second, match_id = in_match(api)
    return api.move(second, match_id, 5)


@scenario("POST", MOVES, 422)
def _move_illegal(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    return api.move(first, match_id, 10)


@scenario("POST", MOVES, 503)
def _move_down(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    api.world.disconnect_service()
    return api.move(first, match_id, 5)


FORFEIT = "/v1/matches/{match}/forfeit"


@scenario("POST", FORFEIT, 200)
def _forfeit(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    return api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)


@scenario("POST", FORFEIT, 401)
def _forfeit_no_token(api: Api) -> Answer:
    _, _, match_id = in_match(api)
    return api.call("POST", f"/v1/matches/{match_id}/forfeit")


@scenario("POST", FORFEIT, 404)
def _forfeit_unknown(api: Api) -> Answer:
    return api.call("POST", "/v1/matches/nosuch/forfeit", token=api.account("alice"))


@scenario("POST", FORFEIT, 409)
def _forfeit_twice(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)
    return api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)


@scenario("POST", FORFEIT, 503)
def _forfeit_down(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    api.world.disconnect_service()
    return api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)


HISTORY = "/v1/players/{name}/matches"


@scenario("GET", HISTORY, 200)
def _history(api: Api) -> Answer:
    first, _, match_id = in_match(api)
    api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)
    return api.call("GET", "/v1/players/alice/matches", token=first)


@scenario("GET", HISTORY, 401)
def _history_no_token(api: Api) -> Answer:
    return api.call("GET", "/v1/players/alice/matches")


@scenario("GET", HISTORY, 404)
def _history_unknown_player(api: Api) -> Answer:
    return api.call("GET", "/v1/players/nobody/matches", token=api.account("alice"))


@scenario("GET", HISTORY, 503)
def _history_down(api: Api) -> Answer:
    token = api.account("alice")
    api.world.disconnect_service()
    return api.call("GET", "/v1/players/alice/matches", token=token)


@scenario("GET", "/v1/events", 200)
def _events(api: Api) -> Answer:
    api.events(api.account("alice"))
    return api.answers[-1]


@scenario("GET", "/v1/events", 400)
def _events_bad_id(api: Api) -> Answer:
    token = api.account("alice")
    return api.call("GET", "/v1/events", token=token, headers={"last-event-id": "x"})


@scenario("GET", "/v1/events", 401)
def _events_no_token(api: Api) -> Answer:
    return api.call("GET", "/v1/events")


@scenario("GET", "/v1/openapi.json", 200)
def _openapi(api: Api) -> Answer:
    return api.call("GET", "/v1/openapi.json")


@scenario("GET", "/healthz", 200)
def _health(api: Api) -> Answer:
    return api.call("GET", "/healthz")


@scenario("GET", "/healthz", 503)
def _health_down(api: Api) -> Answer:
    api.world.disconnect_service()
    return api.call("GET", "/healthz")


def test_every_documented_response_is_driven() -> None:
    """Every status the document gives an operation is driven by some test."""
    mistakes = {(m, t, status) for m, t in WITH_BODY for status in MISTAKES}

    assert documented() <= set(SCENARIOS) | mistakes
    assert set(SCENARIOS) <= documented()


@pytest.mark.parametrize(
    "key", sorted(SCENARIOS), ids=lambda k: f"{k[0]} {k[1]} {k[2]}"
)
def test_response_conforms(api: Api, key: tuple[str, str, int]) -> None:
    """The API really answers this documented status, with a conforming body."""
    method, template, status = key

    answer = SCENARIOS[key](api)

    assert (answer.method, answer.status) == (method, status), answer
    route = route_of(answer.method, answer.path)
    assert route is not None and route.template == template
    conform(answer)
    for other in api.answers:
        conform(other)


def test_stored_records_conform() -> None:
    """A finished match's record and a player's history conform when stored."""
    world = World(service_store=MemoryStore())
    api = Api(world)
    first, _, match_id = in_match(api)
    api.move(first, match_id, 5)
    api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)
    carol = api.account("carol")

    record = api.call("GET", f"/v1/matches/{match_id}", token=carol)
    history = api.call("GET", "/v1/players/alice/matches", token=carol)

    world.gateway.stopService()
    assert record.status == 200
    assert (record.json()["status"], record.json()["moves"]) == ("over", ["5"])
    assert [m["match"] for m in history.json()["matches"]] == [match_id]
    for answer in api.answers:
        conform(answer)


MISTAKES = {400: malformed, 413: too_large, 415: not_json}


@pytest.mark.parametrize("status", sorted(MISTAKES))
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_body_mistakes(api: Api, route: Any, status: int) -> None:
    """A bad body gets a documented (or known) answer from every operation."""
    path = concrete(route.template)

    answer = MISTAKES[status](api, route.method, path)

    if (route.method, route.template) in WITH_BODY:
        assert answer.status == status
    key = (route.method, route.template, answer.status)
    if key in UNDOCUMENTED:
        error = validator({"$ref": "#/components/schemas/Error"})
        assert error.is_valid(answer.json())
    else:
        conform(answer)


def test_known_gaps_still_open() -> None:
    """The document still lacks every listed gap: remove those it gained."""
    assert not UNDOCUMENTED & documented()
    for method, template, status in UNDOCUMENTED_CONTENT:
        operation = DOC["paths"][template][method.lower()]
        assert "content" not in operation["responses"][str(status)]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v2", 404), ("GET", "/v1/sessions", 405), ("PUT", "/healthz", 405)],
)
def test_errors_outside_operations(
    api: Api, method: str, path: str, status: int
) -> None:
    """Unknown paths and methods answer the document's Error shape too."""
    answer = api.call(method, path)

    assert answer.status == status
    assert validator({"$ref": "#/components/schemas/Error"}).is_valid(answer.json())
