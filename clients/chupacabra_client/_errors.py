"""The errors a chupacabra server answers with, one class per code."""

# The class names mirror the server's codes (NotYourTurn for not-your-turn),
# so most of them do not end in "Error".
# ruff: noqa: N818

from __future__ import annotations

import json
from typing import Any, ClassVar


class ChupacabraError(Exception):
    """
    The server refused a request.

    ``code`` is the server's short lowercase code (``not-your-turn``),
    ``status`` the HTTP status it came with and ``message`` the sentence
    the server wrote for people.  Each known code has its own subclass;
    L{UnknownError} stands for the others.
    """

    #: The code this class stands for; empty on the base class.
    code_name: ClassVar[str] = ""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(code, status, message)
        self.code = code
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status}, "
            f"message={self.message!r})"
        )


class UnknownError(ChupacabraError):
    """A code this client does not know, or a reply that was not JSON."""


class BadRequest(ChupacabraError):
    """The request's body or fields were missing or malformed."""

    code_name = "bad-request"


class BadUsername(ChupacabraError):
    """The username breaks the naming rules."""

    code_name = "bad-username"


class BadPassword(ChupacabraError):
    """The password breaks the password rules."""

    code_name = "bad-password"


class Unauthorized(ChupacabraError):
    """No token was sent, or it is unknown, expired or logged out."""

    code_name = "unauthorized"


class BadCredentials(ChupacabraError):
    """Wrong username or password."""

    code_name = "bad-credentials"


class LoginRequired(ChupacabraError):
    """The request needs a logged-in player."""

    code_name = "login-required"


class Forbidden(ChupacabraError):
    """The resource belongs to another player."""

    code_name = "forbidden"


class NotFound(ChupacabraError):
    """There is no such path or resource."""

    code_name = "not-found"


class NoMatch(ChupacabraError):
    """The player has no such match."""

    code_name = "no-match"


class UnknownGame(ChupacabraError):
    """No game service offers that game."""

    code_name = "unknown-game"


class MethodNotAllowed(ChupacabraError):
    """The path does not allow the request's method."""

    code_name = "method-not-allowed"


class NameTaken(ChupacabraError):
    """The username is already registered."""

    code_name = "name-taken"


class NotYourTurn(ChupacabraError):
    """It is another player's turn."""

    code_name = "not-your-turn"


class GameOver(ChupacabraError):
    """The match has already ended."""

    code_name = "game-over"


class AlreadyMatched(ChupacabraError):
    """The seek became a match and can no longer be cancelled."""

    code_name = "already-matched"


class TooLarge(ChupacabraError):
    """The request body was larger than the server accepts."""

    code_name = "too-large"


class TooManyAttempts(ChupacabraError):
    """Too many wrong passwords came from this address; wait a minute."""

    code_name = "too-many-attempts"


class UnsupportedMediaType(ChupacabraError):
    """The request body was not JSON."""

    code_name = "unsupported-media-type"


class BadMove(ChupacabraError):
    """The move cannot be read, or is out of range."""

    code_name = "bad-move"


class IllegalMove(ChupacabraError):
    """The move is not allowed in this position."""

    code_name = "illegal-move"


class Unavailable(ChupacabraError):
    """The game service is unreachable for now; try again shortly."""

    code_name = "unavailable"


class InternalError(ChupacabraError):
    """The server failed unexpectedly (and logged the failure)."""

    code_name = "internal"


#: Every known code and the class that stands for it.
ERRORS: dict[str, type[ChupacabraError]] = {
    cls.code_name: cls
    for cls in [
        BadRequest,
        BadUsername,
        BadPassword,
        Unauthorized,
        BadCredentials,
        LoginRequired,
        Forbidden,
        NotFound,
        NoMatch,
        UnknownGame,
        MethodNotAllowed,
        NameTaken,
        NotYourTurn,
        GameOver,
        AlreadyMatched,
        TooLarge,
        TooManyAttempts,
        UnsupportedMediaType,
        BadMove,
        IllegalMove,
        Unavailable,
        InternalError,
    ]
}


def error_from_response(status: int, body: bytes) -> ChupacabraError:
    """
    The exception for an error response with ``status`` and ``body``.

    A body that is not the server's ``{"error": {"code", "message"}}``
    (a proxy's HTML page, say) gives an L{UnknownError} whose code is
    ``http-<status>``.
    """
    code, message = f"http-{status}", body.decode("utf-8", "replace")[:200]
    try:
        decoded: Any = json.loads(body)
    except ValueError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = error["code"]
        message = str(error.get("message", ""))
    return ERRORS.get(code, UnknownError)(code, status, message)
