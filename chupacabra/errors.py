"""
The errors players and programs can be told about.

Every expected failure carries a short lowercase ``code`` that clients can
act on and a ``message`` for people.  L{ServiceError} is the same thing
shaped to cross the Perspective Broker link as a message, not a traceback.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.spread import pb

#: Every code the gateway may answer with, and what it means.
CODES = {
    "bad-request": "the command's arguments are missing or malformed",
    "line-too-long": "a line was longer than the protocol allows",
    "bad-encoding": "the line was not valid UTF-8",
    "control-characters": "the line held control characters",
    "unknown-command": "no such command",
    "login-required": "the command needs a logged-in player",
    "already-logged-in": "this connection is already logged in",
    "bad-username": "the username does not follow the rules",
    "bad-password": "the password does not follow the rules",
    "name-taken": "the username is already registered",
    "bad-credentials": "wrong username or password",
    "too-many-attempts": "too many wrong passwords from one address; wait a minute",
    "unknown-game": "no game service offers that game",
    "no-match": "no such live match, or it must be named",
    "not-your-turn": "it is the other player's turn",
    "bad-move": "the move cannot be read or is out of range",
    "illegal-move": "the move is not allowed in this position",
    "game-over": "the match has already ended",
    "unavailable": "the game service is unreachable; try again shortly",
    "not-found": "no such thing (HTTP: unknown path or resource)",
    "forbidden": "that belongs to another player",
    "already-matched": "the seek already became a match",
    "internal": "the server failed unexpectedly; the failure was logged",
}


class CommandError(Exception):
    """A command could not be carried out; the player is told why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ServiceError(pb.Error):
    """
    A L{CommandError} raised inside a game service.

    PB copies only the class name and C{str()} of a L{pb.Error}, so the
    string form is the code, a space, and the message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


def from_remote(failure: Failure) -> CommandError | None:
    """
    Turn a failure that came back over PB into a L{CommandError}.

    L{ServiceError}s keep their code and message, and a lost connection
    means the service is ``unavailable``.  Anything else is unexpected:
    ``None`` tells the caller to log it.
    """
    if failure.check(ServiceError):
        value = failure.value
        text = value.decode() if isinstance(value, bytes) else str(value)
        code, _, message = text.partition(" ")
        return CommandError(code, message)
    if failure.check(
        pb.PBConnectionLost, pb.DeadReferenceError, ConnectionDone, ConnectionLost
    ):
        return CommandError("unavailable", "the game service is unreachable")
    return None
