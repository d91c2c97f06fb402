"""The HTTP/JSON API in memory: every endpoint, every error, the event stream."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from api_helpers import PASSWORD, Api, BytesBody, concrete, credentials
from twisted.internet import task
from twisted.web.client import ResponseDone

from chupacabra.accounts import Accounts
from chupacabra.gateway import Gateway
from chupacabra.gateway._core import TOKEN_LIFETIME, TOKEN_RECHECK
from chupacabra.gateway._http import KEEPALIVE, MAX_BODY, ROUTES
from chupacabra.gateway._session import EVENT_BACKLOG
from chupacabra.testing import InlineHasher

#: Cells for the first and second player in turn: the first wins on row one.
WIN = [1, 4, 2, 5, 3]


@pytest.fixture
def api(world: Any) -> Api:
    return Api(world)


# Accounts


def test_register(api: Api) -> None:
    """Registering answers 201 with the account's name, as JSON, CORS-open."""
    answer = api.call("POST", "/v1/accounts", credentials("alice"))

    assert answer.status == 201
    assert answer.json() == {"username": "alice"}
    assert answer.header("access-control-allow-origin") == "*"


def test_register_name_taken(api: Api) -> None:
    """A name registered already, in any case, is a 409 name-taken."""
    api.register("alice")

    answer = api.call("POST", "/v1/accounts", credentials("ALICE"))

    assert answer.status == 409
    assert answer.error() == "name-taken"


@pytest.mark.parametrize(
    ("name", "password", "code"),
    [
        ("with space", PASSWORD, "bad-username"),
        ("x" * 21, PASSWORD, "bad-username"),
        ("", PASSWORD, "bad-username"),
        ("alice", "short", "bad-password"),
        ("alice", "p" * 73, "bad-password"),
        ("alice", "tab\tin-password", "bad-password"),
    ],
)
def test_register_breaks_rules(api: Api, name: str, password: str, code: str) -> None:
    """A username or password against the rules is a 400 with its own code."""
    answer = api.call("POST", "/v1/accounts", credentials(name, password))

    assert answer.status == 400
    assert answer.error() == code


#: Requests whose body the API reads, as (method, path).
BODY_ROUTES = [
    ("POST", "/v1/accounts"),
    ("PUT", "/v1/accounts/me/password"),
    ("POST", "/v1/sessions"),
    ("POST", "/v1/matches/{match}/moves"),
]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{", "not valid JSON"),
        (b'{"username": "alice",}', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"move": "\\ud800", "username": "x", "password": "y"}', "not valid JSON"),
        (b'{"old_password": "a\\udfff"}', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"alice"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_malformed_body(
    api: Api, method: str, path: str, data: bytes, why: str
) -> None:
    """A body that is not a JSON object is a 400 bad-request saying why."""
    token = api.account("alice")

    answer = api.call(
        method,
        path.format(match="nosuch"),
        data=data,
        token=token,
        headers={"content-type": "application/json"},
    )

    assert answer.status == 400
    assert answer.error() == "bad-request"
    assert why in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/accounts", {"username": "carol"}, "password"),
        ("POST", "/v1/accounts", {"password": PASSWORD}, "username"),
        ("POST", "/v1/accounts", {}, "username"),
        ("POST", "/v1/sessions", {"username": "alice"}, "password"),
        ("PUT", "/v1/accounts/me/password", {"old_password": "x" * 9}, "new_password"),
        ("PUT", "/v1/accounts/me/password", {"new_password": "x" * 9}, "old_password"),
    ],
)
def test_missing_field(
    api: Api, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    """A body without a required field is a 400 naming the field."""
    token = api.account("alice")

    answer = api.call(method, path, body, token=token)

    assert answer.status == 400
    assert answer.error() == "bad-request"
    assert repr(field) in answer.json()["error"]["message"]


@pytest.mark.parametrize("value", [5, None, True, ["alice"], {"name": "alice"}])
def test_wrong_field_type(api: Api, value: Any) -> None:
    """A field that is not a string is a 400 bad-request."""
    register = api.call("POST", "/v1/accounts", {"username": value, "password": "x"})
    login = api.call("POST", "/v1/sessions", {"username": "alice", "password": value})

    assert (register.status, register.error()) == (400, "bad-request")
    assert (login.status, login.error()) == (400, "bad-request")


def test_empty_body_means_no_fields(api: Api) -> None:
    """A body of only whitespace is read as no fields, whatever its type."""
    answer = api.call("POST", "/v1/accounts", data=b" \r\n ")

    assert answer.status == 400
    assert "'username'" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/jsonx"},
    ],
)
def test_not_json_media_type(api: Api, headers: dict[str, str]) -> None:
    """A body sent as anything but application/json is a 415."""
    data = b'{"username": "alice", "password": "password1"}'

    answer = api.call("POST", "/v1/accounts", data=data, headers=headers)

    assert answer.status == 415
    assert answer.error() == "unsupported-media-type"
    assert api.call("POST", "/v1/sessions", credentials("alice")).status == 401


def test_json_media_type_with_parameters(api: Api) -> None:
    """application/json with a charset and odd case is accepted."""
    data = b'{"username": "alice", "password": "password1"}'
    headers = {"content-type": "Application/JSON ; charset=utf-8"}

    answer = api.call("POST", "/v1/accounts", data=data, headers=headers)

    assert answer.status == 201


def padded(size: int) -> bytes:
    """A registration body of exactly ``size`` bytes."""
    start = b'{"username": "alice", "password": "password1", "pad": "'
    return start + b"x" * (size - len(start) - 2) + b'"}'


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_body_at_the_limit(api: Api, chunked: bool) -> None:
    """A body of exactly 64 KiB is read."""
    body = BytesBody(padded(MAX_BODY), chunked=chunked)

    answer = api.call(
        "POST", "/v1/accounts", data=body, headers={"content-type": "application/json"}
    )

    assert answer.status == 201


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_body_over_the_limit(api: Api, method: str, path: str, chunked: bool) -> None:
    """A body one byte over 64 KiB is a 413, declared or chunked."""
    token = api.account("bob")
    body = BytesBody(padded(MAX_BODY + 1), chunked=chunked)

    answer = api.call(
        method,
        path.format(match="nosuch"),
        data=body,
        token=token,
        headers={"content-type": "application/json"},
    )

    assert answer.status == 413
    assert answer.error() == "too-large"
    assert api.call("POST", "/v1/sessions", credentials("alice")).status == 401


# Sessions


def test_log_in(api: Api) -> None:
    """Logging in answers a token, its expiry by the clock and the name."""
    api.register("Alice")
    api.world.reactor.advance(60)

    answer = api.call("POST", "/v1/sessions", credentials("ALICE"))

    assert answer.status == 201
    body = answer.json()
    assert body["username"] == "Alice"
    assert body["expires_at"] == "1970-01-08T00:01:00Z"
    assert len(body["token"]) >= 32
    assert api.call("GET", "/v1/matches", token=body["token"]).status == 200


@pytest.mark.parametrize(
    ("name", "password"),
    [("alice", "wrong-password"), ("nobody", PASSWORD), ("bad name", PASSWORD)],
)
def test_log_in_wrong_credentials(api: Api, name: str, password: str) -> None:
    """A wrong password or unknown name is a 401 bad-credentials."""
    api.register("alice")

    answer = api.call("POST", "/v1/sessions", credentials(name, password))

    assert answer.status == 401
    assert answer.error() == "bad-credentials"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.auth], ids=lambda r: r.name)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer   ", "Basic YWxpY2U6cGFzc3dvcmQx", "token"],
)
def test_no_token(api: Api, route: Any, authorization: str | None) -> None:
    """Every route that needs a player is a 401 without a bearer token."""
    headers = {} if authorization is None else {"authorization": authorization}

    answer = api.call(route.method, concrete(route.template), headers=headers)

    assert answer.status == 401
    assert answer.error() == "unauthorized"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.auth], ids=lambda r: r.name)
def test_garbage_token(api: Api, route: Any) -> None:
    """A token the gateway never issued is a 401 on every route that needs one."""
    answer = api.call(route.method, concrete(route.template), token="garbage")

    assert answer.status == 401
    assert answer.error() == "unauthorized"


def test_token_expires(api: Api) -> None:
    """A token works until its lifetime has passed on the clock, then is a 401."""
    token = api.account("alice")
    api.world.reactor.advance(TOKEN_LIFETIME - 1)
    assert api.call("GET", "/v1/matches", token=token).status == 200

    api.world.reactor.advance(1)
    answer = api.call("GET", "/v1/matches", token=token)

    assert answer.status == 401
    assert answer.error() == "unauthorized"


def test_token_lifetime_is_configurable(api: Api) -> None:
    """The gateway's token lifetime sets both expires_at and the expiry."""
    api.world.gateway.token_lifetime = 30.0
    api.register("alice")

    body = api.call("POST", "/v1/sessions", credentials("alice")).json()
    api.world.reactor.advance(30)

    assert body["expires_at"] == "1970-01-01T00:00:30Z"
    assert api.call("GET", "/v1/matches", token=body["token"]).status == 401


def test_log_out(api: Api) -> None:
    """Logging out answers 204 with no body; then the token is a 401."""
    token = api.account("alice")

    answer = api.call("DELETE", "/v1/sessions/current", token=token)

    assert answer.status == 204
    assert answer.body == b""
    again = api.call("DELETE", "/v1/sessions/current", token=token)
    assert (again.status, again.error()) == (401, "unauthorized")
    assert api.call("GET", "/v1/matches", token=token).status == 401


def test_tokens_are_independent(api: Api) -> None:
    """Two tokens of one player both work; logging one out keeps the other."""
    first = api.account("alice")
    second = api.login("alice")

    api.call("DELETE", "/v1/sessions/current", token=first)

    assert first != second
    assert api.call("GET", "/v1/matches", token=first).status == 401
    assert api.call("GET", "/v1/matches", token=second).status == 200


def restarted(api: Api, clock: task.Clock) -> Api:
    """A client of a new gateway over the same store, as after a restart."""
    gateway = Gateway(Accounts(api.world.store, InlineHasher()))
    return Api(SimpleNamespace(gateway=gateway, reactor=clock, flush=api.world.flush))


def test_token_survives_restart(api: Api) -> None:
    """A token works after a gateway restart, and its old event ids count as lost."""
    alice, bob = api.account("alice"), api.account("bob")
    api.match(alice, bob)
    seen = api.events(alice).events()
    clock = task.Clock()
    clock.advance(60)
    again = restarted(api, clock)

    answer = again.call("GET", "/v1/seeks/nosuch", token=alice)
    stream = again.events(alice, last_id=seen[-1]["id"])

    assert (answer.status, answer.error()) == (404, "not-found")
    [start] = stream.events()
    assert start["event"] == "stream-start"
    assert "dropped" in start["data"]["reason"]
    assert start["id"] == start["data"]["last_id"] > seen[-1]["id"]


def test_expired_token_after_restart(api: Api) -> None:
    """A stored token past its lifetime is a 401 on a restarted gateway."""
    token = api.account("alice")
    clock = task.Clock()
    clock.advance(TOKEN_LIFETIME)
    again = restarted(api, clock)

    answer = again.call("GET", "/v1/seeks/nosuch", token=token)

    assert (answer.status, answer.error()) == (401, "unauthorized")
    assert api.world.store.sessions == {}


def test_api_login_keeps_line_login(api: Api) -> None:
    """An API login does not end the same player's line connection."""
    line = api.world.player("alice")

    api.login("alice")

    assert len(api.world.gateway.players["alice"].sessions) == 2
    assert not any("logged out" in text for text in line.read())


def test_line_login_keeps_api_login(api: Api) -> None:
    """A line login does not end the same player's token or its stream."""
    token = api.account("alice")
    stream = api.events(token)

    line = api.world.player()
    reply = line.send(f"LOGIN alice {PASSWORD}")

    assert reply[0].startswith("OK"), reply
    assert not stream.ended
    assert api.call("GET", "/v1/matches", token=token).status == 200
    assert [e["event"] for e in stream.events()] == ["stream-start"]


# Passwords


def test_change_password(api: Api) -> None:
    """Changing the password answers 200; only the new one logs in after."""
    token = api.account("alice")

    answer = api.call(
        "PUT",
        "/v1/accounts/me/password",
        {"old_password": PASSWORD, "new_password": "new-password"},
        token=token,
    )

    assert answer.status == 200
    assert answer.json() == {"username": "alice"}
    assert api.call("GET", "/v1/matches", token=token).status == 200
    assert api.call("POST", "/v1/sessions", credentials("alice")).status == 401
    new = credentials("alice", "new-password")
    assert api.call("POST", "/v1/sessions", new).status == 201


def test_change_password_wrong_old(api: Api) -> None:
    """A wrong old password is a 403 and leaves the password as it was."""
    token = api.account("alice")

    answer = api.call(
        "PUT",
        "/v1/accounts/me/password",
        {"old_password": "not-the-password", "new_password": "new-password"},
        token=token,
    )

    assert answer.status == 403
    assert answer.error() == "bad-credentials"
    assert api.call("POST", "/v1/sessions", credentials("alice")).status == 201


def test_change_password_bad_new(api: Api) -> None:
    """A new password against the rules is a 400 bad-password."""
    token = api.account("alice")

    answer = api.call(
        "PUT",
        "/v1/accounts/me/password",
        {"old_password": PASSWORD, "new_password": "short"},
        token=token,
    )

    assert answer.status == 400
    assert answer.error() == "bad-password"


# Games and seeks


def test_games(api: Api) -> None:
    """The game list needs no token and describes tic-tac-toe."""
    answer = api.call("GET", "/v1/games")

    assert answer.status == 200
    games = {game["name"]: game for game in answer.json()["games"]}
    game = games["tictactoe"]
    assert game["title"] == "Tic-tac-toe"
    assert game["players"] == 2
    assert set(game) == {"name", "title", "description", "moves", "players"}


def test_seek_waits(api: Api) -> None:
    """A seek with nobody waiting is a 201 waiting seek with its Location."""
    token = api.account("alice")

    answer = api.call("POST", "/v1/games/TicTacToe/seeks", token=token)

    assert answer.status == 201
    seek = answer.json()
    assert seek == {
        "id": seek["id"],
        "game": "tictactoe",
        "status": "waiting",
        "match": None,
    }
    assert answer.header("location") == f"/v1/seeks/{seek['id']}"
    again = api.call("GET", f"/v1/seeks/{seek['id']}", token=token)
    assert (again.status, again.json()) == (200, seek)


def test_seek_matches(api: Api) -> None:
    """A second seek makes a match, and both seeks say which."""
    alice, bob = api.account("alice"), api.account("bob")
    waiting = api.seek(alice)

    matched = api.seek(bob)
    alice_seek = api.call("GET", f"/v1/seeks/{waiting['id']}", token=alice).json()

    assert matched["status"] == "matched"
    assert matched["match"] in api.world.service.matches
    assert alice_seek["status"] == "matched"
    assert alice_seek["match"] == matched["match"]


def test_seek_twice_is_one_seek(api: Api) -> None:
    """Seeking again while waiting answers the same seek."""
    token = api.account("alice")

    first, second = api.seek(token), api.seek(token)

    assert first == second


def test_seek_unknown_game(api: Api) -> None:
    """Seeking a game nobody offers is a 404 unknown-game."""
    token = api.account("alice")

    answer = api.call("POST", "/v1/games/chess/seeks", token=token)

    assert answer.status == 404
    assert answer.error() == "unknown-game"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_seek(api: Api, method: str) -> None:
    """A seek id nobody was given is a 404 not-found."""
    token = api.account("alice")

    answer = api.call(method, "/v1/seeks/nosuch", token=token)

    assert answer.status == 404
    assert answer.error() == "not-found"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_someone_elses_seek(api: Api, method: str) -> None:
    """Another player's seek is a 403 forbidden, and stays as it was."""
    alice, bob = api.account("alice"), api.account("bob")
    seek = api.seek(alice)

    answer = api.call(method, f"/v1/seeks/{seek['id']}", token=bob)

    assert answer.status == 403
    assert answer.error() == "forbidden"
    mine = api.call("GET", f"/v1/seeks/{seek['id']}", token=alice).json()
    assert mine["status"] == "waiting"


def test_cancel_seek(api: Api) -> None:
    """Cancelling a waiting seek answers it cancelled; nobody is matched with it."""
    alice, bob = api.account("alice"), api.account("bob")
    seek = api.seek(alice)

    answer = api.call("DELETE", f"/v1/seeks/{seek['id']}", token=alice)

    assert answer.status == 200
    assert answer.json() == {**seek, "status": "cancelled"}
    assert api.seek(bob)["status"] == "waiting"
    again = api.call("DELETE", f"/v1/seeks/{seek['id']}", token=alice)
    assert (again.status, again.json()["status"]) == (200, "cancelled")


def test_cancel_matched_seek(api: Api) -> None:
    """Cancelling a seek that became a match is a 409 already-matched."""
    alice, bob = api.account("alice"), api.account("bob")
    seek = api.seek(alice)
    match_id = api.seek(bob)["match"]

    answer = api.call("DELETE", f"/v1/seeks/{seek['id']}", token=alice)

    assert answer.status == 409
    assert answer.error() == "already-matched"
    assert match_id in answer.json()["error"]["message"]


# Matches


def test_matches(api: Api) -> None:
    """The match list shows live matches, then finished ones under recent."""
    alice, bob = api.account("alice"), api.account("bob")
    first, second, match_id = api.match(alice, bob)

    live = api.call("GET", "/v1/matches", token=alice)
    api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)
    done = api.call("GET", "/v1/matches", token=alice)

    assert live.status == 200
    assert live.json()["recent"] == []
    [summary] = live.json()["matches"]
    assert summary["match"] == match_id
    assert summary["to_move"] == api.names[first]
    assert done.json()["matches"] == []
    [ended] = done.json()["recent"]
    assert ended["match"] == match_id
    assert ended["winner"] == api.names[second]
    assert ended["reason"] == "forfeit"


def test_match_state(api: Api) -> None:
    """A match's state has its board as JSON and no text rendering."""
    alice, bob = api.account("alice"), api.account("bob")
    first, _, match_id = api.match(alice, bob)
    api.move(first, match_id, 5)

    answer = api.call("GET", f"/v1/matches/{match_id}", token=bob)

    assert answer.status == 200
    state = answer.json()
    assert state["event"] == "match-state"
    assert state["moves"] == ["5"]
    assert state["board"]["cells"][4] == "X"
    assert state["seconds_left"] == 120
    assert "text" not in state


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "/moves", {"move": "5"}),
        ("POST", "/forfeit", None),
    ],
)
def test_unknown_match(api: Api, method: str, suffix: str, body: Any) -> None:
    """A match nobody started is a 404 no-match."""
    token = api.account("alice")

    answer = api.call(method, "/v1/matches/nosuch" + suffix, body, token=token)

    assert answer.status == 404
    assert answer.error() == "no-match"


@pytest.mark.parametrize("suffix", ["/moves", "/forfeit"])
def test_someone_elses_match(api: Api, suffix: str) -> None:
    """Moving or forfeiting in a match the player is not in is a 404 no-match."""
    alice, bob, carol = api.account("alice"), api.account("bob"), api.account("carol")
    _, _, match_id = api.match(alice, bob)

    answer = api.call(
        "POST", f"/v1/matches/{match_id}{suffix}", {"move": "5"}, token=carol
    )

    assert answer.status == 404
    assert answer.error() == "no-match"
    assert api.world.service.matches[match_id].moves == []


def test_move(api: Api) -> None:
    """A move answers 201 with the move as written and who is next."""
    alice, bob = api.account("alice"), api.account("bob")
    first, second, match_id = api.match(alice, bob)

    answer = api.move(first, match_id, "5")
    number = api.move(second, match_id, 1)

    assert answer.status == 201
    assert answer.json() == {
        "match": match_id,
        "move": "5",
        "to_move": api.names[second],
    }
    assert number.status == 201
    assert number.json()["move"] == "1"


def test_not_your_turn(api: Api) -> None:
    """A move out of turn is a 409 not-your-turn."""
    alice, bob = api.account("alice"), api.account("bob")
    _, second, match_id = api.match(alice, bob)

    answer = api.move(second, match_id, "5")

    assert answer.status == 409
    assert answer.error() == "not-your-turn"


@pytest.mark.parametrize(
    ("move", "code"),
    [("0", "bad-move"), ("10", "bad-move"), ("x", "bad-move"), ("", "bad-move")],
)
def test_bad_move(api: Api, move: str, code: str) -> None:
    """A move that cannot be read is a 422 bad-move."""
    alice, bob = api.account("alice"), api.account("bob")
    first, _, match_id = api.match(alice, bob)

    answer = api.move(first, match_id, move)

    assert answer.status == 422
    assert answer.error() == code


def test_illegal_move(api: Api) -> None:
    """A move onto a taken cell is a 422 illegal-move."""
    alice, bob = api.account("alice"), api.account("bob")
    first, second, match_id = api.match(alice, bob)
    api.move(first, match_id, 5)

    answer = api.move(second, match_id, 5)

    assert answer.status == 422
    assert answer.error() == "illegal-move"


@pytest.mark.parametrize("body", [{}, {"move": True}, {"move": [5]}, {"move": 5.5}])
def test_move_wrong_type(api: Api, body: dict[str, Any]) -> None:
    """A move that is missing or neither a string nor a whole number is a 400."""
    alice, bob = api.account("alice"), api.account("bob")
    first, _, match_id = api.match(alice, bob)

    answer = api.call("POST", f"/v1/matches/{match_id}/moves", body, token=first)

    assert answer.status == 400
    assert answer.error() == "bad-request"


def test_win_then_game_over(api: Api) -> None:
    """After a winning move, moves and forfeits are a 409 game-over."""
    alice, bob = api.account("alice"), api.account("bob")
    first, second, match_id = api.match(alice, bob)
    players = [first, second]
    for turn, cell in enumerate(WIN):
        last = api.move(players[turn % 2], match_id, cell)

    move = api.move(second, match_id, 9)
    forfeit = api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first)
    state = api.call("GET", f"/v1/matches/{match_id}", token=second).json()

    assert last.json()["to_move"] is None
    assert (move.status, move.error()) == (409, "game-over")
    assert (forfeit.status, forfeit.error()) == (409, "game-over")
    assert state["winner"] == api.names[first]
    assert state["reason"] == "win"


def test_forfeit(api: Api) -> None:
    """Forfeiting answers 200 naming the other player the winner."""
    alice, bob = api.account("alice"), api.account("bob")
    _, second, match_id = api.match(alice, bob)

    answer = api.call("POST", f"/v1/matches/{match_id}/forfeit", token=second)

    assert answer.status == 200
    winner = api.names[alice if second == bob else bob]
    assert answer.json() == {"match": match_id, "winner": winner}


def test_line_and_http_players_share_a_match(api: Api) -> None:
    """A line player and an API player in one match see each other's moves."""
    line = api.world.player("alice")
    token = api.account("bob")
    stream = api.events(token)
    line.send("PLAY tictactoe")
    match_id = api.seek(token)["match"]
    line.read()
    if api.world.service.matches[match_id].players[0] == "bob":
        assert api.move(token, match_id, 1).status == 201
        assert any("bob played 1" in text for text in line.read())

    reply = line.send(f"MOVE {match_id} 5")
    answer = api.move(token, match_id, 9)
    seen = line.read()

    assert reply[0].startswith("OK"), reply
    moved = [e["data"] for e in stream.events() if e["event"] == "moved"]
    assert (moved[-2]["player"], moved[-2]["move"]) == ("alice", "5")
    assert (moved[-1]["player"], moved[-1]["move"]) == ("bob", "9")
    assert answer.status == 201
    assert f"* bob played 9 in match {match_id}" in seen, seen


# Routing


@pytest.mark.parametrize(
    "path",
    ["/", "/v1", "/v2/games", "/v1/games/", "/v1/matches/a/b", "/v1/seeks/"],
)
def test_unknown_path(api: Api, path: str) -> None:
    """A path the API does not serve is a JSON 404, not an HTML page."""
    answer = api.call("GET", path)

    assert answer.status == 404
    assert answer.error() == "not-found"
    assert b"<html" not in answer.body.lower()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/accounts", "POST"),
        ("DELETE", "/v1/games", "GET, HEAD"),
        ("PATCH", "/v1/seeks/abc", "DELETE, GET, HEAD"),
        ("POST", "/v1/events", "GET, HEAD"),
        ("PUT", "/healthz", "GET, HEAD"),
        ("HEAD", "/v1/accounts", "POST"),
    ],
)
def test_wrong_method(api: Api, method: str, path: str, allow: str) -> None:
    """A method the path does not allow is a 405 with an Allow header."""
    answer = api.call(method, path)

    assert answer.status == 405
    assert answer.header("allow") == allow
    if method != "HEAD":
        assert answer.error() == "method-not-allowed"
    else:
        assert answer.body == b""


@pytest.mark.parametrize("path", ["/healthz", "/v1/games", "/v1/openapi.json"])
def test_head_is_get_without_the_body(api: Api, path: str) -> None:
    """HEAD answers what GET would, headers and length included, with no body."""
    got = api.call("GET", path)
    head = api.call("HEAD", path)

    assert head.status == got.status == 200
    assert head.body == b""
    assert head.header("content-type") == got.header("content-type")
    assert head.header("content-length") == str(len(got.body))


def test_head_needs_the_same_token_as_get(api: Api) -> None:
    """HEAD on a route that needs a token is refused without one, like GET."""
    assert api.call("HEAD", "/v1/matches").status == 401
    token = api.account("alice")
    assert api.call("HEAD", "/v1/matches", token=token).status == 200


def test_head_on_the_event_stream_opens_no_stream(api: Api) -> None:
    """HEAD /v1/events gives the stream's headers and ends at once."""
    token = api.account("alice")
    head = api.call("HEAD", "/v1/events", token=token)

    assert head.status == 200
    assert head.header("content-type") == "text/event-stream; charset=utf-8"
    assert head.body == b""


def test_preflight(api: Api) -> None:
    """OPTIONS answers a CORS preflight listing the path's methods."""
    answer = api.call("OPTIONS", "/v1/seeks/abc")

    assert answer.status == 204
    assert answer.header("allow") == "DELETE, GET, HEAD, OPTIONS"
    assert answer.header("access-control-allow-methods") == (
        "DELETE, GET, HEAD, OPTIONS"
    )
    headers = answer.header("access-control-allow-headers") or ""
    assert "authorization" in headers
    assert "last-event-id" in headers
    assert answer.header("access-control-allow-origin") == "*"


def test_openapi_served(api: Api) -> None:
    """The OpenAPI document is served as JSON without a token."""
    answer = api.call("GET", "/v1/openapi.json")

    assert answer.status == 200
    assert answer.json()["openapi"].startswith("3.1")


# The game service going away


def test_health(api: Api) -> None:
    """Health is ok while the game service is linked."""
    answer = api.call("GET", "/healthz")

    assert answer.status == 200
    body = answer.json()
    assert body["status"] == "ok"
    [service] = body["services"]
    assert (service["name"], service["up"]) == ("memory", True)
    assert "tictactoe" in service["games"]


def test_health_degraded(api: Api) -> None:
    """Health is a 503 saying degraded once the game service link is down."""
    api.world.disconnect_service()

    answer = api.call("GET", "/healthz")

    assert answer.status == 503
    assert answer.json()["status"] == "degraded"
    assert answer.json()["services"][0]["up"] is False


def test_service_down(api: Api) -> None:
    """Everything that needs the game service is a 503 while it is away."""
    alice, bob, carol = api.account("alice"), api.account("bob"), api.account("carol")
    first, _, match_id = api.match(alice, bob)
    seek = api.seek(carol)
    api.world.disconnect_service()

    answers = [
        api.call("GET", "/v1/games"),
        api.call("POST", "/v1/games/tictactoe/seeks", token=alice),
        api.call("DELETE", f"/v1/seeks/{seek['id']}", token=carol),
        api.call("GET", "/v1/matches", token=alice),
        api.call("GET", f"/v1/matches/{match_id}", token=alice),
        api.move(first, match_id, 5),
        api.call("POST", f"/v1/matches/{match_id}/forfeit", token=first),
    ]

    assert [(a.path, a.status) for a in answers] == [(a.path, 503) for a in answers]
    assert {a.error() for a in answers} == {"unavailable"}


def test_service_down_accounts_still_work(api: Api) -> None:
    """Registering, logging in and out, and event streams need no game service."""
    api.world.disconnect_service()

    token = api.account("alice")
    stream = api.events(token)

    assert stream.events()[0]["event"] == "stream-start"
    assert api.call("DELETE", "/v1/sessions/current", token=token).status == 204
    assert stream.ended


# The event stream


def test_events_start(api: Api) -> None:
    """A new stream says retry, then stream-start carrying the id to resume from."""
    token = api.account("alice")

    stream = api.events(token)

    assert stream.response.headers.getRawHeaders("content-type") == [
        "text/event-stream; charset=utf-8"
    ]
    assert stream.response.headers.getRawHeaders("cache-control") == ["no-cache"]
    first, start = stream.messages()
    assert first == {"retry": "2000"}
    assert start == {
        "id": "0",
        "event": "stream-start",
        "data": {"event": "stream-start", "last_id": 0, "reason": "stream started"},
    }


def test_events_arrive_numbered(api: Api) -> None:
    """Match events arrive as they happen, numbered from 1, without text."""
    alice, bob = api.account("alice"), api.account("bob")
    stream = api.events(alice)

    first, second, match_id = api.match(alice, bob)
    api.move(first, match_id, 5)
    api.call("POST", f"/v1/matches/{match_id}/forfeit", token=second)

    events = stream.events()[1:]
    assert [(e["id"], e["event"]) for e in events] == [
        (1, "match-started"),
        (2, "moved"),
        (3, "match-ended"),
    ]
    assert all(e["data"]["match"] == match_id for e in events)
    assert all("text" not in e["data"] for e in events)
    assert events[1]["data"]["board"]["cells"][4] == "X"
    assert events[2]["data"]["reason"] == "forfeit"


def play_some(
    api: Api, first: str, second: str, match_id: str, cells: list[int]
) -> None:
    players = [first, second]
    for turn, cell in enumerate(cells):
        assert api.move(players[turn % 2], match_id, cell).status == 201


@pytest.mark.parametrize("how", ["header", "query"])
def test_events_resume(api: Api, how: str) -> None:
    """Resuming with Last-Event-ID replays exactly the events missed, then goes on."""
    alice, bob = api.account("alice"), api.account("bob")
    first, second, match_id = api.match(alice, bob)
    old = api.events(alice)
    play_some(api, first, second, match_id, [1, 4])
    seen = old.events()
    old.close()
    play_some(api, first, second, match_id, [2, 5])

    if how == "header":
        new = api.events(alice, last_id=seen[-1]["id"])
    else:
        new = api.events(alice, query=f"?last_event_id={seen[-1]['id']}")
    replayed = new.events()
    api.move(first, match_id, 3)

    assert [e["id"] for e in seen] == [1, 2, 3]
    assert [(e["id"], e["data"]["move"]) for e in replayed] == [(4, "2"), (5, "5")]
    assert [e["id"] for e in new.events()] == [4, 5, 6, 7]
    assert [e["event"] for e in new.events()[2:]] == ["moved", "match-ended"]


def test_events_resume_when_up_to_date(api: Api) -> None:
    """Resuming from the newest id replays nothing and sends no stream-start."""
    alice, bob = api.account("alice"), api.account("bob")
    api.match(alice, bob)

    stream = api.events(alice, last_id=1)

    assert stream.messages() == [{"retry": "2000"}]


def test_events_resume_too_old(api: Api) -> None:
    """An id older than the kept events gets a stream-start saying some dropped."""
    alice = api.account("alice")
    line_alice, line_bob = api.world.player(), api.world.player("bob")
    line_alice.send(f"LOGIN alice {PASSWORD}")
    for _ in range(EVENT_BACKLOG // 2 + 1):
        line_alice.send("PLAY tictactoe")
        line_bob.send("PLAY tictactoe")
        line_alice.send("FORFEIT")

    stream = api.events(alice, last_id=1)

    [start, *rest] = stream.events()
    last = EVENT_BACKLOG + 2
    assert start["id"] == last
    assert start["event"] == "stream-start"
    assert start["data"]["last_id"] == last
    assert "dropped" in start["data"]["reason"]
    assert rest == []
    assert api.events(alice, last_id=2).events()[0]["id"] == 3


@pytest.mark.parametrize("value", ["abc", "1.5", "", "+5", "-1", "1_000", "\u0665"])
def test_events_bad_last_id(api: Api, value: str) -> None:
    """A Last-Event-ID that is not a whole number is a 400."""
    token = api.account("alice")

    answer = api.call(
        "GET", "/v1/events", token=token, headers={"last-event-id": value}
    )

    assert answer.status == 400
    assert answer.error() == "bad-request"


def test_events_token_in_query(api: Api) -> None:
    """The event stream, and only it, takes the token as ?access_token=."""
    token = api.account("alice")

    stream = api.events(token, query=f"?access_token={token}", authorize=False)
    other = api.call("GET", f"/v1/matches?access_token={token}")

    assert stream.events()[0]["event"] == "stream-start"
    assert other.status == 401


def test_events_keepalive(api: Api) -> None:
    """An idle stream gets a keepalive comment every 15 seconds of the clock."""
    token = api.account("alice")
    stream = api.events(token)

    api.world.reactor.advance(KEEPALIVE - 0.5)
    before = stream.messages()
    api.world.reactor.advance(0.5)
    once = stream.messages()
    api.world.reactor.advance(KEEPALIVE)

    assert {"comment": "keepalive"} not in before
    assert once[-1] == {"comment": "keepalive"}
    assert stream.messages()[-2:] == [{"comment": "keepalive"}] * 2


def test_events_end_at_logout(api: Api) -> None:
    """Logging out ends the stream cleanly."""
    token = api.account("alice")
    stream = api.events(token)
    assert not stream.ended

    api.call("DELETE", "/v1/sessions/current", token=token)

    assert stream.ended
    assert stream.collector.reason is not None
    assert stream.collector.reason.check(ResponseDone)


def test_events_end_at_expiry(api: Api) -> None:
    """The stream ends when its token expires."""
    token = api.account("alice")
    stream = api.events(token)

    api.world.reactor.advance(TOKEN_LIFETIME)

    assert stream.ended


def test_events_after_client_leaves(api: Api) -> None:
    """A stream whose client hung up stops its keepalives and its listening."""
    alice, bob = api.account("alice"), api.account("bob")
    timers = len(api.world.reactor.getDelayedCalls())
    stream = api.events(alice)
    assert len(api.world.reactor.getDelayedCalls()) == timers + 1

    stream.close()
    assert len(api.world.reactor.getDelayedCalls()) == timers
    other = api.events(alice)
    first, _, match_id = api.match(alice, bob)
    api.move(first, match_id, 5)

    assert stream.ended
    assert [e["event"] for e in other.events()][-2:] == ["match-started", "moved"]
    [session] = [s for s in api.world.gateway.tokens.values() if s.name == "alice"]
    assert len(session.log_.listeners) == 1


def test_two_streams_share_numbers(api: Api) -> None:
    """Two streams of one token see the same events under the same ids."""
    alice, bob = api.account("alice"), api.account("bob")
    one, two = api.events(alice), api.events(alice)

    first, _, match_id = api.match(alice, bob)
    api.move(first, match_id, 5)

    assert one.events() == two.events()
    assert [e["id"] for e in one.events()] == [0, 1, 2]


def test_events_snapshot_at_login(api: Api) -> None:
    """A token issued during a live match starts its events with a snapshot."""
    alice, bob = api.account("alice"), api.account("bob")
    _, _, match_id = api.match(alice, bob)

    token = api.login("alice")
    stream = api.events(token, last_id=0)

    [snapshot] = stream.events()
    assert snapshot["id"] == 1
    assert snapshot["event"] == "match-state"
    assert snapshot["data"]["match"] == match_id
    assert "text" not in snapshot["data"]


def test_move_as_a_whole_float_is_accepted(api: Api) -> None:
    """A move sent as the number 5.0 is read like 5."""
    alice, bob = api.account("alice"), api.account("bob")
    first, _, match_id = api.match(alice, bob)
    answer = api.call(
        "POST", f"/v1/matches/{match_id}/moves", {"move": 5.0}, token=first
    )
    assert answer.status == 201
    assert answer.json()["move"] == "5"


def test_deeply_nested_body_is_a_bad_request(api: Api) -> None:
    """A body nested past the JSON parser's depth is a 400, not a crash."""
    answer = api.call(
        "POST",
        "/v1/accounts",
        data=b"[" * 10_000,
        headers={"content-type": "application/json"},
    )
    assert answer.status == 400
    assert answer.error() == "bad-request"


def test_access_token_that_is_not_utf8_is_unauthorized(api: Api) -> None:
    """A query-string token with bytes that are not UTF-8 is a 401."""
    answer = api.call("GET", "/v1/events?access_token=%ff")
    assert answer.status == 401
    assert answer.error() == "unauthorized"


def test_player_names_in_paths_are_percent_decoded(api: Api) -> None:
    """A player whose name is not ASCII is found from a percent-encoded path."""
    api.register("Zoë")
    token = api.account("bob")
    answer = api.call("GET", "/v1/players/Zo%C3%AB/matches", token=token)
    assert answer.status == 200
    assert answer.json() == {"player": "Zoë", "matches": []}


def test_someone_elses_live_match_is_not_found(api: Api) -> None:
    """A live match the caller does not play in is a 404, as on the line."""
    alice, bob = api.account("alice"), api.account("bob")
    _, _, match_id = api.match(alice, bob)
    carol = api.account("carol")
    answer = api.call("GET", f"/v1/matches/{match_id}", token=carol)
    assert answer.status == 404
    assert answer.error() == "no-match"


def test_access_log_leaves_out_query_strings() -> None:
    """Tokens sent as ?access_token= never reach the access log."""
    from twisted.web.test.requesthelper import DummyRequest

    from chupacabra.gateway._http import _access_log

    request = DummyRequest([b"v1", b"events"])
    request.uri = b"/v1/events?access_token=secret-token"
    request.method = b"GET"
    request.code = 200
    request.sentLength = 0
    line = _access_log("[04/Dec/2026:00:00:00 +0000]", request)
    assert "secret-token" not in line
    assert '"GET /v1/events HTTP/1.0"' in line


def test_a_move_with_half_a_surrogate_pair_is_refused(api: Api) -> None:
    """A move escaped as a lone UTF-16 surrogate is a 400, and play goes on."""
    alice, bob = api.account("alice"), api.account("bob")
    first, _, match = api.match(alice, bob)
    answer = api.call(
        "POST",
        f"/v1/matches/{match}/moves",
        data=b'{"move": "\\ud800"}',
        token=first,
        headers={"content-type": "application/json"},
    )
    assert answer.status == 400
    assert answer.error() == "bad-request"
    assert api.move(first, match, 5).status == 201


def test_a_token_ended_by_another_gateway_stops_working_here(
    api: Api, world: Any
) -> None:
    """
    Gateways sharing a store learn of a logout elsewhere within
    TOKEN_RECHECK seconds: the token is then a 401 here too.
    """
    token = api.account("alice")
    assert api.call("GET", "/v1/matches", token=token).status == 200
    # Another gateway on the same store logs the token out.
    [key] = list(world.store.sessions)
    world.store.delete_session(key)

    assert api.call("GET", "/v1/matches", token=token).status == 200
    world.reactor.advance(TOKEN_RECHECK)
    answer = api.call("GET", "/v1/matches", token=token)
    assert answer.status == 401
    assert answer.error() == "unauthorized"
    assert "alice" not in world.gateway.players
    assert api.call("GET", "/v1/matches", token=api.login("alice")).status == 200


def test_an_open_stream_ends_when_another_gateway_ends_its_token(
    api: Api, world: Any
) -> None:
    """An event stream checks its token at each keepalive and ends once gone."""
    token = api.account("alice")
    stream = api.events(token)
    world.reactor.advance(KEEPALIVE)
    api.pump(lambda: False)
    assert not stream.ended
    [key] = list(world.store.sessions)
    world.store.delete_session(key)

    world.reactor.advance(KEEPALIVE)
    api.pump(lambda: stream.ended)
    assert stream.ended
    assert "alice" not in world.gateway.players
