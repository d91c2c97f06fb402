"""
Two chupacabra_client players play one tic-tac-toe match of random moves.

Run it from a checkout, with the Python that chupacabra is installed in,
against a running server's HTTP API:

    .venv/bin/python clients/example_game.py http://127.0.0.1:7655

It signs in two players, fresh names or the ones given with --players:
each is registered with --password (example-password unless given), or
just logged in if the name is taken.  It seeks a match for both, plays
random free cells until the match ends, printing each move as the event
streams report it, then prints the result and closes both clients.
"""

from __future__ import annotations

import argparse
import random
import secrets
from typing import Any

from chupacabra_client import BadCredentials, Client, EventStream, NameTaken
from twisted.internet import defer, task

#: The players' password unless --password gives another.
PASSWORD = "example-password"
#: Seconds to wait for any one event before giving up.
EVENT_TIMEOUT = 30.0


async def next_event(
    stream: EventStream, kind: str, match: str | None, reactor: Any
) -> dict[str, Any]:
    """The data of the next ``kind`` event about ``match``, skipping others."""
    while True:
        waiting = stream.next()
        waiting.addTimeout(EVENT_TIMEOUT, reactor)
        event = await waiting
        if event.kind == kind and (match is None or event.match == match):
            return event.data


async def sign_in(
    url: str, name: str, password: str, reactor: Any
) -> tuple[Client, EventStream]:
    """A client logged in as ``name`` (registered if new), its stream started."""
    client = Client(url, reactor=reactor)
    try:
        await client.register(name, password)
    except NameTaken:
        pass  # Already registered: log in with the password given.
    try:
        await client.log_in(name, password)
    except BadCredentials:
        await client.close()
        raise SystemExit(f"{name} is registered with another password: use --password")
    stream = client.events()
    await next_event(stream, "stream-start", None, reactor)
    return client, stream


async def play(
    reactor: Any, url: str, names: list[str], password: str, seed: int | None
) -> None:
    rng = random.Random(seed)
    players = [await sign_in(url, name, password, reactor) for name in names]
    try:
        await play_match(reactor, players, rng)
    finally:
        for client, _ in players:
            await client.close()


async def play_match(
    reactor: Any, players: list[tuple[Client, EventStream]], rng: random.Random
) -> None:
    by_name = {client.username: (client, stream) for client, stream in players}
    for client, _ in players:
        seek = await client.seek("tictactoe")
        print(f"{client.username} seeks a match: {seek.status}")

    first_stream = players[0][1]
    started = await next_event(first_stream, "match-started", None, reactor)
    match, board = started["match"], started["board"]
    marks = dict(zip(started["players"], started["labels"], strict=True))
    print(f"match {match}: " + " vs ".join(f"{p} ({m})" for p, m in marks.items()))
    to_move: str | None = started["to_move"]

    while to_move is not None:
        client, _ = by_name[to_move]
        free = [i + 1 for i, cell in enumerate(board["cells"]) if cell is None]
        moved = await client.move(match, rng.choice(free))
        # Each player sees the move pushed on its own stream.
        for _, stream in players:
            seen = await next_event(stream, "moved", match, reactor)
        print(f"{seen['player']} ({marks[seen['player']]}) plays {seen['move']}")
        board, to_move = seen["board"], moved.to_move

    ended = await next_event(first_stream, "match-ended", match, reactor)
    for row in (0, 3, 6):
        print(" " + " | ".join(c or "." for c in board["cells"][row : row + 3]))
    if ended["winner"] is None:
        print(f"match {match} is over: a draw")
    else:
        print(f"match {match} is over: {ended['winner']} won")


def main() -> None:
    parser = argparse.ArgumentParser(description="Play one match of random moves.")
    parser.add_argument("url", help="the server's HTTP API, http://127.0.0.1:7655")
    parser.add_argument(
        "--players", nargs=2, metavar="NAME", help="two usernames to play as"
    )
    parser.add_argument(
        "--password",
        default=PASSWORD,
        help="the players' password, to register or log in with (%(default)s)",
    )
    parser.add_argument("--seed", type=int, help="seed the random moves")
    options = parser.parse_args()
    names = options.players or [f"{who}-{secrets.token_hex(3)}" for who in "ab"]
    task.react(
        lambda reactor: defer.Deferred.fromCoroutine(
            play(reactor, options.url, names, options.password, options.seed)
        )
    )


if __name__ == "__main__":
    main()
