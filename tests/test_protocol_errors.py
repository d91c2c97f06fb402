"""The line protocol's answers to bad input, its framing, modes and layout."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import LinePlayer, World

from chupacabra.gateway._line import COMMANDS, MAX_LINE

IAC, DONT, DO, WONT, WILL = 255, 254, 253, 252, 251
ECHO, SUPPRESS_GO_AHEAD, TERMINAL_TYPE = 1, 3, 24


class RecordingPlayer(LinePlayer):
    """A line player that also keeps every byte it was sent."""

    def __init__(self, world: World, name: str | None = None) -> None:
        self.received = bytearray()
        super().__init__(world, world.factory.buildProtocol(None))
        if name is not None:
            self.login(name)

    def read(self) -> list[str]:
        self.world.flush()
        self.received += self.transport.value()
        return super().read()


def read_raw(player: LinePlayer) -> bytes:
    """Everything written to ``player`` since the last read, undecoded."""
    player.world.flush()
    data = player.transport.value()
    player.transport.clear()
    return bytes(data)


def assert_usable(player: LinePlayer) -> None:
    """The connection still answers a valid command."""
    reply = player.send("WHO")
    assert reply[0].startswith("OK "), reply


def play_to_a_win(first: LinePlayer, second: LinePlayer) -> list[str]:
    """Play first 1, 2, 3 against second 4, 5; return first's last reply."""
    for player, cell in [(first, 1), (second, 4), (first, 2), (second, 5)]:
        first.read()
        second.read()
        reply = player.send(f"MOVE {cell}")
        assert reply[0].startswith("OK "), reply
    second.read()
    return first.send("MOVE 3")


# Malformed lines


def test_line_over_the_limit_is_refused(world: World) -> None:
    """A line longer than 4 KiB gets a line-too-long error and nothing else."""
    player = world.player()
    reply = player.send("WHO" + "x" * MAX_LINE)
    assert reply == [f"ERR line-too-long lines may be at most {MAX_LINE} bytes"]
    assert_usable(player)


def test_line_at_the_limit_is_accepted(world: World) -> None:
    """A line of exactly 4 KiB is still read as a command."""
    player = world.player()
    line = "WHO".ljust(MAX_LINE)
    assert len(line.encode()) == MAX_LINE
    assert player.send(line)[0] == "OK 0 players online"


def test_long_line_in_small_chunks_is_refused_once(world: World) -> None:
    """A long line arriving in many pieces is refused once, as soon as it is."""
    player = world.player()
    chunk = b"y" * 100
    for _ in range(MAX_LINE // len(chunk)):
        player.send_raw(chunk)
    assert player.read() == []
    for _ in range(30):
        player.send_raw(chunk)
    assert player.read() == [f"ERR line-too-long lines may be at most {MAX_LINE} bytes"]
    for _ in range(60):
        player.send_raw(chunk)
    player.send_raw(b"\r\n")
    assert player.read() == []
    assert_usable(player)


@pytest.mark.parametrize(
    "line",
    [b"caf\xe9", b"WHO \xc3\x28", b"\xed\xa0\x80", b"\x80WHO", b"WHO \xff\xff"],
)
def test_bytes_that_are_not_utf8_are_refused(world: World, line: bytes) -> None:
    """A line that is not UTF-8 (an escaped IAC included) is a bad-encoding."""
    player = world.player()
    player.send_raw(line + b"\r\n")
    assert player.read() == ["ERR bad-encoding lines must be UTF-8 text"]
    assert_usable(player)


@pytest.mark.parametrize("line", ["WHO\x07", "\x1b[AWHO", "WHO\x7f", "WHO\x85"])
def test_control_characters_are_refused(world: World, line: str) -> None:
    """A line holding a control character is refused with control-characters."""
    player = world.player()
    assert player.send(line) == [
        "ERR control-characters lines may not hold control characters"
    ]
    assert_usable(player)


def test_tab_separates_words(world: World) -> None:
    """A tab is whitespace between words, not a refused control character."""
    player = world.player()
    assert player.send("HELP\tmove") == ["OK MOVE [match] move", "  make a move"]


def test_blank_lines_are_ignored(world: World) -> None:
    """Empty and all-space lines get no answer at all."""
    player = world.player()
    assert player.send("") == []
    assert player.send("   ") == []
    assert_usable(player)


def test_unknown_command_points_to_help(world: World) -> None:
    """An unknown command is named back with a hint to type HELP."""
    player = world.player()
    assert player.send("FLY away") == [
        "ERR unknown-command no command FLY; type HELP for the commands"
    ]
    assert_usable(player)


# Commands refused by their state or arguments


@pytest.mark.parametrize(
    "line",
    [
        "LOGOUT",
        "PASSWORD password1 password2",
        "PLAY tictactoe",
        "CANCEL",
        "MATCHES",
        "BOARD",
        "MOVE 5",
        "FORFEIT",
    ],
)
def test_commands_need_login(world: World, line: str) -> None:
    """Each command that acts for a player is refused before LOGIN."""
    player = world.player()
    assert player.send(line) == ["ERR login-required log in first: LOGIN name password"]
    assert_usable(player)


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("REGISTER alice", "REGISTER name password"),
        ("REGISTER a b c", "REGISTER name password"),
        ("LOGIN alice", "LOGIN name password"),
        ("LOGOUT now", "LOGOUT"),
        ("PASSWORD old", "PASSWORD old new"),
        ("PLAY", "PLAY game"),
        ("PLAY tictactoe now", "PLAY game"),
        ("MOVE", "MOVE [match] move"),
        ("MOVE abc 1 2", "MOVE [match] move"),
        ("BOARD a b", "BOARD [match]"),
        ("FORFEIT a b", "FORFEIT [match]"),
        ("HELP move play", "HELP [command]"),
        ("WHO all", "WHO"),
        ("JSON please", "JSON"),
        ("QUIT now", "QUIT"),
    ],
)
def test_wrong_argument_count_shows_usage(world: World, line: str, usage: str) -> None:
    """Too many or too few arguments get bad-request with the usage."""
    player = world.player("alice")
    assert player.send(line) == [f"ERR bad-request usage: {usage}"]
    assert_usable(player)


def test_move_out_of_turn(world: World) -> None:
    """The player not to move is told whose turn it is."""
    first, second, _ = world.pair()
    first_name = first.protocol.session.name
    assert second.send("MOVE 5") == [f"ERR not-your-turn it is {first_name}'s turn"]
    assert first.send("MOVE 5")[0].startswith("OK ")


def test_move_on_occupied_cell(world: World) -> None:
    """A move on a taken cell is an illegal-move and the turn stays."""
    first, second, match = world.pair()
    first.send("MOVE 5")
    second.read()
    assert second.send("MOVE 5") == ["ERR illegal-move cell 5 is already taken"]
    assert second.send("MOVE 1")[0] == f"OK played 1 in match {match}"


@pytest.mark.parametrize("move", ["0", "10", "x", "-1", "1.5", "\uff15"])
def test_move_out_of_range(world: World, move: str) -> None:
    """A move that is no cell number from 1 to 9 is a bad-move."""
    first, _, match = world.pair()
    assert first.send(f"MOVE {move}") == ["ERR bad-move cells are numbered 1 to 9"]
    assert first.send("MOVE 9")[0] == f"OK played 9 in match {match}"


def test_move_after_game_over(world: World) -> None:
    """Moving in a match that has ended is refused with game-over."""
    first, second, match = world.pair()
    play_to_a_win(first, second)
    second.read()
    assert second.send("MOVE 9") == [f"ERR game-over match {match} is over"]
    assert second.send(f"MOVE {match} 9") == [f"ERR game-over match {match} is over"]
    assert_usable(second)


def test_move_without_match(world: World) -> None:
    """MOVE from a player with no match says there is none."""
    player = world.player("alice")
    assert player.send("MOVE 5") == [
        "ERR no-match you have no live match; PLAY a game first"
    ]
    assert player.send("MOVE abcdef 5") == ["ERR no-match you have no match abcdef"]
    assert_usable(player)


# Accounts


def test_wrong_password_and_unknown_user_answer_alike(world: World) -> None:
    """A wrong password and an unknown name get the very same answer."""
    world.player("alice")
    player = world.player()
    wrong_password = player.send("LOGIN alice password2")
    unknown_user = player.send("LOGIN nobody password1")
    assert wrong_password == ["ERR bad-credentials wrong username or password"]
    assert unknown_user == wrong_password
    assert player.send("LOGIN alice password1") == ["OK logged in as alice"]


def test_duplicate_registration(world: World) -> None:
    """Registering a taken name, in any case, is refused with name-taken."""
    player = world.player()
    assert player.send("REGISTER alice password1")[0].startswith("OK ")
    assert player.send("REGISTER alice password2") == [
        "ERR name-taken the name alice is taken"
    ]
    assert player.send("REGISTER ALICE password2") == [
        "ERR name-taken the name ALICE is taken"
    ]
    assert player.send("LOGIN Alice password1") == ["OK logged in as alice"]


def test_login_twice(world: World) -> None:
    """A second LOGIN on a logged-in connection is refused."""
    world.player("bob")
    player = world.player("alice")
    assert player.send("LOGIN bob password1") == [
        "ERR already-logged-in already logged in as alice"
    ]
    assert player.send("WHO") == ["OK 2 players online", "  alice", "  bob"]


def test_password_change(world: World) -> None:
    """PASSWORD checks the old one, and after it only the new one logs in."""
    player = world.player("alice")
    assert player.send("PASSWORD wrongpass1 newpass99") == [
        "ERR bad-credentials the old password is wrong"
    ]
    assert player.send("PASSWORD password1 newpass99") == ["OK password changed"]
    assert player.send("LOGOUT") == ["OK logged out alice"]
    assert player.send("LOGIN alice password1") == [
        "ERR bad-credentials wrong username or password"
    ]
    assert player.send("LOGIN alice newpass99") == ["OK logged in as alice"]


# Framing


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b"\r", b"\r\0"])
def test_line_endings(world: World, ending: bytes) -> None:
    """Lines ending in CR LF, LF, CR or CR NUL are each one command."""
    player = world.player()
    player.send_raw(b"WHO" + ending + b"HELP who" + ending)
    assert player.read() == [
        "OK 0 players online",
        "OK WHO",
        "  list the players online",
    ]


def test_line_ending_split_across_reads(world: World) -> None:
    """The LF or NUL after a CR is swallowed when it comes in the next read."""
    player = world.player()
    for data in [b"WHO\r", b"\0WHO\r", b"\nWHO\r", b"\r\n"]:
        player.send_raw(data)
    assert player.read() == ["OK 0 players online"] * 3


def test_one_byte_at_a_time(world: World) -> None:
    """Commands sent one byte at a time are read whole."""
    player = world.player()
    for byte in b"REGISTER alice password1\r\nLOGIN alice password1\nwho\r\0":
        player.send_raw(bytes([byte]))
    assert player.read() == [
        "OK registered alice; now LOGIN to play",
        "OK logged in as alice",
        "OK 1 player online",
        "  alice",
    ]


def test_pipelined_commands_answer_in_order(world: World) -> None:
    """Lines sent together are answered one after another, in order."""
    player = world.player("alice")
    player.send_raw(b"PLAY tictactoe\r\nWHO\r\nFLY\r\nMATCHES\r\nCANCEL\r\n")
    assert player.read() == [
        "OK waiting for an opponent for tictactoe; CANCEL to stop",
        "OK 1 player online",
        "  alice",
        "ERR unknown-command no command FLY; type HELP for the commands",
        "OK 0 live matches",
        "  waiting for: tictactoe",
        "OK stopped waiting for tictactoe",
    ]


def test_telnet_negotiation_is_stripped_and_refused(world: World) -> None:
    """Telnet options before a command are refused and the command runs."""
    player = world.player()
    offer = bytes([IAC, WILL, TERMINAL_TYPE, IAC, DO, SUPPRESS_GO_AHEAD])
    player.send_raw(offer + b"WHO\r\n")
    refusal = bytes([IAC, DONT, TERMINAL_TYPE, IAC, WONT, SUPPRESS_GO_AHEAD])
    assert read_raw(player) == refusal + b"OK 0 players online\r\n"


def test_telnet_negotiation_split_across_reads(world: World) -> None:
    """A telnet command cut between reads is still recognised and stripped."""
    player = world.player()
    for data in [bytes([IAC]), bytes([DO]), bytes([ECHO]) + b"WH", b"O\r\n"]:
        player.send_raw(data)
    assert read_raw(player) == bytes([IAC, WONT, ECHO]) + b"OK 0 players online\r\n"


def test_telnet_option_refused_once(world: World) -> None:
    """An option asked for again is not refused a second time."""
    player = world.player()
    player.send_raw(bytes([IAC, WILL, ECHO]) + b"WHO\r\n")
    read_raw(player)
    player.send_raw(bytes([IAC, WILL, ECHO, IAC, WONT, ECHO]) + b"WHO\r\n")
    assert read_raw(player) == b"OK 0 players online\r\n"


def test_telnet_subnegotiation_is_stripped(world: World) -> None:
    """A telnet subnegotiation is dropped from the line without a reply."""
    player = world.player()
    sub = bytes([IAC, 250, TERMINAL_TYPE, 0]) + b"xterm" + bytes([IAC, 240])
    player.send_raw(b"WH" + sub + b"O\r\n")
    assert read_raw(player) == b"OK 0 players online\r\n"


def test_plain_client_never_receives_iac(world: World) -> None:
    """A client that sends no telnet commands is never sent byte 255."""
    alice = RecordingPlayer(world, "alice")
    bob = RecordingPlayer(world, "bob")
    alice.send("PLAY tictactoe")
    bob.send("PLAY tictactoe")
    match = next(iter(world.service.matches.values()))
    first, second = (alice, bob) if match.players[0] == "alice" else (bob, alice)
    for line in ["HELP", "BOARD", "MATCHES", "FLY", "MOVE 0"]:
        first.send(line)
    play_to_a_win(first, second)
    second.send("JSON")
    second.send("BOARD")
    second.read()
    assert alice.received and bob.received
    assert IAC not in alice.received
    assert IAC not in bob.received


# Case, help and modes


@pytest.mark.parametrize("line", ["who", "WHO", "WhO", "wHo"])
def test_commands_are_case_insensitive(world: World, line: str) -> None:
    """A command is recognised whatever the case of its letters."""
    player = world.player("alice")
    assert player.send(line) == ["OK 1 player online", "  alice"]


def test_help_lists_every_command(world: World) -> None:
    """HELP lists each command's usage and summary, one to a line."""
    player = world.player()
    reply = player.send("HELP")
    assert reply[0] == "OK commands (HELP <command> for one):"
    assert len(reply) == 1 + len(COMMANDS)
    for line, command in zip(reply[1:], COMMANDS.values(), strict=True):
        assert line.startswith("  " + command.usage + " ")
        assert line.endswith("  " + command.summary)


def test_help_for_one_command(world: World) -> None:
    """HELP with a command name, in any case, explains that command."""
    player = world.player()
    expected = ["OK PLAY game", "  wait for an opponent in a game"]
    assert player.send("HELP play") == expected
    assert player.send("help PLAY") == expected


def test_help_for_unknown_command(world: World) -> None:
    """HELP for a command that does not exist is an unknown-command error."""
    player = world.player()
    assert player.send("HELP fly") == ["ERR unknown-command no command FLY"]
    assert_usable(player)


def test_json_replies(world: World) -> None:
    """In JSON mode replies are ok/result or ok/error objects, one per line."""
    player = world.player("alice")
    assert json.loads(player.send("JSON")[0]) == {
        "ok": True,
        "result": {"mode": "json"},
    }
    assert [json.loads(line) for line in player.send("WHO")] == [
        {"ok": True, "result": {"players": ["alice"]}}
    ]
    assert [json.loads(line) for line in player.send("MOVE 5")] == [
        {
            "ok": False,
            "error": {
                "code": "no-match",
                "message": "you have no live match; PLAY a game first",
            },
        }
    ]
    player.send_raw(b"\xc3\x28\r\n")
    assert [json.loads(line) for line in player.read()] == [
        {
            "ok": False,
            "error": {
                "code": "bad-encoding",
                "message": "lines must be UTF-8 text",
            },
        }
    ]


def json_pair(world: World) -> tuple[LinePlayer, LinePlayer, list[Any]]:
    """Two players in JSON mode put in a match; return them and bob's lines."""
    alice, bob = world.player("alice"), world.player("bob")
    alice.send("JSON")
    bob.send("JSON")
    alice.send("PLAY tictactoe")
    return alice, bob, [json.loads(line) for line in bob.send("PLAY tictactoe")]


def test_json_match_started(world: World) -> None:
    """A match-started event names the match, game, seats in order and mover."""
    alice, _, lines = json_pair(world)
    match = next(iter(world.service.matches.values()))
    reply, event = lines
    seek = reply["result"].pop("seek")
    assert world.gateway.seeks[seek].match == match.id
    assert reply == {
        "ok": True,
        "result": {"status": "matched", "game": "tictactoe", "match": match.id},
    }
    assert event["event"] == "match-started"
    assert event["match"] == match.id
    assert event["game"] == "tictactoe"
    assert sorted(event["players"]) == ["alice", "bob"]
    assert event["players"] == match.players
    assert event["to_move"] == event["players"][0]
    assert "text" not in event
    assert [json.loads(line) for line in alice.read()] == [event]


def test_json_moved_and_match_ended(world: World) -> None:
    """Moved events name the mover and next mover, null once the game ends."""
    alice, bob, _ = json_pair(world)
    match = next(iter(world.service.matches.values()))
    first, second = (alice, bob) if match.players[0] == "alice" else (bob, alice)
    names = {alice: "alice", bob: "bob"}
    first.read()
    second.read()

    reply, moved = [json.loads(line) for line in first.send("MOVE 1")]
    assert reply == {
        "ok": True,
        "result": {"match": match.id, "move": "1", "to_move": names[second]},
    }
    assert moved["event"] == "moved"
    assert (moved["match"], moved["player"], moved["move"]) == (
        match.id,
        names[first],
        "1",
    )
    assert moved["to_move"] == names[second]
    assert [json.loads(line) for line in second.read()] == [moved]

    for player, cell in [(second, 4), (first, 2), (second, 5)]:
        assert json.loads(player.send(f"MOVE {cell}")[0])["ok"] is True
        first.read()
        second.read()
    lines = [json.loads(line) for line in first.send("MOVE 3")[1:]]
    assert [line["event"] for line in lines] == ["moved", "match-ended"]
    assert lines[0]["move"] == "3"
    assert lines[0]["to_move"] is None
    assert lines[1]["match"] == match.id
    assert lines[1]["winner"] == names[first]
    assert lines[1]["reason"] == "win"


def test_text_switches_back(world: World) -> None:
    """TEXT leaves JSON mode, and its own reply is already text."""
    player = world.player("alice")
    player.send("JSON")
    assert player.send("TEXT") == ["OK text mode"]
    assert player.send("WHO") == ["OK 1 player online", "  alice"]


def assert_text_layout(lines: list[str]) -> None:
    """Lines open with OK, ERR or ``* `` and go on indented by two spaces."""
    assert lines and not lines[0].startswith(" "), lines
    for line in lines:
        assert line.startswith(("OK ", "ERR ", "* ", "  ")), line


def test_text_mode_layout(world: World) -> None:
    """Replies start with OK or ERR, events with ``* ``, the rest indented."""
    first, second, _ = world.pair()
    for line in ["HELP", "GAMES", "MATCHES", "BOARD", "WHO", "FLY", "MOVE 0"]:
        reply = first.send(line)
        assert reply[0].startswith(("OK ", "ERR ")), reply
        assert_text_layout(reply)
    reply = first.send("MOVE 5")
    assert reply[0].startswith("OK ")
    assert_text_layout(reply)
    pushed = second.read()
    assert pushed[0].startswith("* ")
    assert_text_layout(pushed)


def test_reply_comes_before_the_events_it_caused(world: World) -> None:
    """PLAY, MOVE and LOGIN are answered before the events they set off."""
    alice, bob = world.player("alice"), world.player("bob")
    alice.send("PLAY tictactoe")
    reply = bob.send("PLAY tictactoe")
    match = next(iter(world.service.matches.values()))
    assert reply[0] == f"OK matched: match {match.id}"
    assert reply[1].startswith(f"* match {match.id} of tictactoe started")

    mover = alice if match.players[0] == "alice" else bob
    mover.read()
    reply = mover.send("MOVE 5")
    assert reply[0] == f"OK played 5 in match {match.id}"
    assert reply[1] == f"* {match.players[0]} played 5 in match {match.id}"

    again = world.player()
    reply = again.send(f"LOGIN {match.players[1]} password1")
    assert reply[0] == f"OK logged in as {match.players[1]}"
    assert reply[1].startswith(f"* match {match.id}: tictactoe")


def test_a_client_that_stops_reading_stops_being_read(world: World) -> None:
    """While a client's replies pile up unread, its further lines wait."""
    player = world.player()
    player.protocol.pauseProducing()  # as the transport does when full
    assert player.transport.producerState == "paused"
    player.send_raw(b"WHO\r\n" * 200)
    assert player.read() == []
    player.protocol.resumeProducing()
    assert player.read().count("OK 0 players online") == 200
    assert player.transport.producerState == "producing"


def test_two_logins_at_once_leave_exactly_one_logged_in(world: World) -> None:
    """Two LOGINs of one player racing each other end with one logged in."""
    world.player("alice").close()
    first, second = world.player(), world.player()
    first.protocol.dataReceived(b"LOGIN alice password1\r\n")
    second.protocol.dataReceived(b"LOGIN alice password1\r\n")
    assert first.read() == [
        "OK logged in as alice",
        "* logged out: logged in elsewhere",
    ]
    assert second.read() == ["OK logged in as alice"]
    assert first.send("MATCHES")[0].startswith("ERR login-required")
    assert second.send("MATCHES")[0] == "OK 0 live matches"
    assert second.send("WHO") == ["OK 1 player online", "  alice"]


def test_too_many_wrong_passwords_from_one_host_are_refused(world: World) -> None:
    """After 20 wrong passwords in a minute a host is refused, then let back."""
    world.player("alice").close()
    guesser = world.player()
    for _ in range(20):
        assert guesser.send("LOGIN alice wrong-guess")[0].startswith(
            "ERR bad-credentials"
        )
    assert guesser.send("LOGIN alice password1") == [
        "ERR too-many-attempts too many wrong passwords from your address; "
        "wait a minute"
    ]
    world.reactor.advance(61)
    assert guesser.send("LOGIN alice password1") == ["OK logged in as alice"]
