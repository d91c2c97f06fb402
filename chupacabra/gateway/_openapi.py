"""The OpenAPI 3.1 description of the HTTP API, served at /v1/openapi.json."""

from __future__ import annotations

import copy
from typing import Any

_STRING = {"type": "string"}
_NAMES = {"type": "array", "items": _STRING}
_NULLABLE_STRING = {"type": ["string", "null"]}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _body(schema_name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }


_ERRORS = {
    "400": "Malformed body, wrong field types or a rule broken",
    "401": "Missing, unknown or expired token, or wrong credentials",
    "403": "The resource belongs to another player",
    "404": "No such path or resource",
    "405": "The path does not allow this method",
    "409": "Conflicts with the state: not your turn, game over, name taken",
    "413": "The body is larger than 64 KiB",
    "415": "The body is not application/json",
    "429": "Too many wrong passwords from this address; wait a minute",
    "422": "The move cannot be read or is not legal",
    "503": "The game service is unreachable",
}


def _operation(
    summary: str,
    ok: str,
    ok_schema: dict[str, Any] | None,
    errors: list[str],
    auth: bool = True,
    body: str | None = None,
    parameters: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if ok_schema is None:
        responses[ok] = {"description": summary}
    else:
        responses[ok] = _json(ok_schema, summary)
    for status in errors:
        responses[status] = _json(_ref("Error"), _ERRORS[status])
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if auth:
        operation["security"] = [{"bearer": []}]
    if body is not None:
        operation["requestBody"] = _body(body)
    if parameters:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": _STRING}
            for name in parameters
        ]
    return operation


_SCHEMAS: dict[str, Any] = {
    "Error": _object(
        ["error"],
        error=_object(["code", "message"], code=_STRING, message=_STRING),
    ),
    "Credentials": _object(
        ["username", "password"], username=_STRING, password=_STRING
    ),
    "PasswordChange": _object(
        ["old_password", "new_password"], old_password=_STRING, new_password=_STRING
    ),
    "Account": _object(["username"], username=_STRING),
    "Session": _object(
        ["token", "expires_at", "username"],
        token=_STRING,
        expires_at={"type": "string", "format": "date-time"},
        username=_STRING,
    ),
    "Game": _object(
        ["name", "title", "description", "moves", "players"],
        name=_STRING,
        title=_STRING,
        description=_STRING,
        moves={"type": "string", "description": "How a move is written"},
        players={"type": "integer"},
    ),
    "Games": _object(["games"], games={"type": "array", "items": _ref("Game")}),
    "Seek": _object(
        ["id", "game", "status", "match"],
        id=_STRING,
        game=_STRING,
        status={"enum": ["waiting", "matched", "cancelled"]},
        match=_NULLABLE_STRING,
    ),
    "MatchSummary": _object(
        ["match", "game", "players", "to_move"],
        match=_STRING,
        game=_STRING,
        players=_NAMES,
        to_move=_NULLABLE_STRING,
    ),
    "FinishedMatch": _object(
        ["match", "game", "players", "winner", "reason", "moves"],
        match=_STRING,
        game=_STRING,
        players=_NAMES,
        winner=_NULLABLE_STRING,
        reason=_STRING,
        moves=_NAMES,
    ),
    "MatchRecord": _object(
        ["match", "game", "players", "status", "winner", "reason", "moves"],
        match=_STRING,
        game=_STRING,
        players=_NAMES,
        status={"enum": ["live", "over"]},
        winner=_NULLABLE_STRING,
        reason={"type": ["string", "null"]},
        started_at={"type": "number"},
        ended_at={"type": ["number", "null"]},
        moves=_NAMES,
    ),
    "History": _object(
        ["player", "matches"],
        player=_STRING,
        matches={"type": "array", "items": _ref("MatchRecord")},
    ),
    "Matches": _object(
        ["matches", "recent"],
        matches={"type": "array", "items": _ref("MatchSummary")},
        recent={"type": "array", "items": _ref("FinishedMatch")},
    ),
    "MatchState": _object(
        ["event", "match", "game", "players", "to_move", "board", "moves", "labels"],
        event={"const": "match-state"},
        match=_STRING,
        game=_STRING,
        players=_NAMES,
        to_move=_NULLABLE_STRING,
        board={"type": "object", "description": "The game's JSON rendering"},
        moves=_NAMES,
        labels=_NAMES,
        seconds_left={"type": "integer"},
        winner=_NULLABLE_STRING,
        reason=_STRING,
    ),
    "MoveRequest": _object(
        ["move"],
        move={"type": ["string", "integer"], "description": "As a player types it"},
    ),
    "Moved": _object(
        ["match", "move", "to_move"],
        match=_STRING,
        move=_STRING,
        to_move=_NULLABLE_STRING,
    ),
    "Forfeited": _object(["match", "winner"], match=_STRING, winner=_NULLABLE_STRING),
    "Health": _object(
        ["status", "services"],
        status={"enum": ["ok", "degraded"]},
        services={
            "type": "array",
            "items": _object(
                ["name", "up", "games"],
                name=_STRING,
                up={"type": "boolean"},
                games=_NAMES,
            ),
        },
    ),
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "chupacabra",
        "version": "1",
        "description": (
            "Accounts, matchmaking and matches of turn-based games. Updates "
            "are pushed as Server-Sent Events on /v1/events, carrying the "
            "same objects as the line protocol's JSON mode."
        ),
    },
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "paths": {
        "/v1/accounts": {
            "post": _operation(
                "Register an account",
                "201",
                _ref("Account"),
                ["400", "409", "413", "415"],
                auth=False,
                body="Credentials",
            )
        },
        "/v1/accounts/me/password": {
            "put": _operation(
                "Change the password",
                "200",
                _ref("Account"),
                ["400", "401", "403", "413", "415", "429"],
                body="PasswordChange",
            )
        },
        "/v1/sessions": {
            "post": _operation(
                "Log in: a bearer token",
                "201",
                _ref("Session"),
                ["400", "401", "413", "415", "429"],
                auth=False,
                body="Credentials",
            )
        },
        "/v1/sessions/current": {
            "delete": _operation(
                "Log out: the token stops working", "204", None, ["401"]
            )
        },
        "/v1/games": {
            "get": _operation(
                "The game types on offer", "200", _ref("Games"), ["503"], auth=False
            )
        },
        "/v1/games/{game}/seeks": {
            "post": _operation(
                "Seek an opponent",
                "201",
                _ref("Seek"),
                ["401", "404", "503"],
                parameters=["game"],
            )
        },
        "/v1/seeks/{seek}": {
            "get": _operation(
                "A seek's status",
                "200",
                _ref("Seek"),
                ["401", "403", "404"],
                parameters=["seek"],
            ),
            "delete": _operation(
                "Cancel a seek",
                "200",
                _ref("Seek"),
                ["401", "403", "404", "409", "503"],
                parameters=["seek"],
            ),
        },
        "/v1/matches": {
            "get": _operation(
                "The caller's live and recent matches",
                "200",
                _ref("Matches"),
                ["401", "503"],
            )
        },
        "/v1/players/{name}/matches": {
            "get": _operation(
                "A player's finished matches, newest first",
                "200",
                _ref("History"),
                ["401", "404", "503"],
                parameters=["name"],
            )
        },
        "/v1/matches/{match}": {
            "get": _operation(
                "A live match's state, or a finished match's record",
                "200",
                {"oneOf": [_ref("MatchState"), _ref("MatchRecord")]},
                ["401", "404", "503"],
                parameters=["match"],
            )
        },
        "/v1/matches/{match}/moves": {
            "post": _operation(
                "Make a move",
                "201",
                _ref("Moved"),
                ["400", "401", "404", "409", "413", "415", "422", "503"],
                body="MoveRequest",
                parameters=["match"],
            )
        },
        "/v1/matches/{match}/forfeit": {
            "post": _operation(
                "Give up a match",
                "200",
                _ref("Forfeited"),
                ["401", "404", "409", "503"],
                parameters=["match"],
            )
        },
        "/v1/events": {
            "get": {
                "summary": "The caller's events, as Server-Sent Events",
                "description": (
                    "Each event has an id; reconnect with Last-Event-ID (or "
                    "?last_event_id=) to resume. A new stream starts with a "
                    "stream-start event carrying the id to resume from; a "
                    "resumed one starts with the missed events, or with "
                    "stream-start if some were lost. ?access_token= may "
                    "replace the header."
                ),
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "An endless event stream",
                        "content": {"text/event-stream": {"schema": _STRING}},
                    },
                    "400": _json(_ref("Error"), "Last-Event-ID is not a number"),
                    "401": _json(_ref("Error"), _ERRORS["401"]),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Whether the gateway and each game service link is up",
                "responses": {
                    "200": _json(_ref("Health"), "Every link is up"),
                    "503": _json(_ref("Health"), "Some game service is down"),
                },
            }
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the API description."""
    return copy.deepcopy(_DOCUMENT)
