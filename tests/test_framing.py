"""Splitting raw telnet and netcat bytes into lines."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chupacabra.gateway._framing import TOO_LONG, LineSplitter, TelnetFilter

MAX = 4096

IAC, SB, SE = 255, 250, 240
WILL, WONT, DO, DONT = 251, 252, 253, 254
ECHO, SGA, TTYPE, NAWS = 1, 3, 24, 31

ENDINGS = [b"\r\n", b"\n", b"\r", b"\r\0"]


def cmd(*values: int) -> bytes:
    """The bytes of one telnet command, IAC first."""
    return bytes((IAC, *values))


def feed_pieces(splitter: LineSplitter, pieces: list[bytes]) -> list[bytes | None]:
    """Feed each piece in turn and gather every line reported."""
    lines: list[bytes | None] = []
    for piece in pieces:
        lines += splitter.feed(piece)
    return lines


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    """Cut ``stream`` at the given offsets, in order, keeping empty pieces."""
    bounds = [0, *sorted(points), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


def reference_lines(stream: bytes, max_length: int) -> list[bytes | None]:
    """What a correct splitter reports for the whole of ``stream``."""
    *complete, tail = re.split(rb"\r\n|\r\0|\r|\n", stream)
    lines = [TOO_LONG if len(line) > max_length else line for line in complete]
    if len(tail) > max_length:
        lines.append(TOO_LONG)
    return lines


# LineSplitter: endings


@pytest.mark.parametrize("ending", ENDINGS, ids=repr)
def test_each_line_ending(ending: bytes) -> None:
    """CR LF, LF, CR and CR NUL each end a line and leave no residue."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"LOGIN alice pw" + ending + b"HELP" + ending) == [
        b"LOGIN alice pw",
        b"HELP",
    ]
    assert splitter.feed(b"") == []


@pytest.mark.parametrize("ending", ENDINGS, ids=repr)
def test_each_line_ending_byte_at_a_time(ending: bytes) -> None:
    """Each ending gives the same lines when the stream arrives byte by byte."""
    stream = b"one" + ending + b"two" + ending + ending
    assert feed_pieces(LineSplitter(MAX), bytewise(stream)) == [
        b"one",
        b"two",
        b"",
    ]


def test_mixed_endings() -> None:
    """Different endings may follow one another in one stream."""
    stream = b"a\r\nb\nc\rd\r\0e\n"
    assert LineSplitter(MAX).feed(stream) == [b"a", b"b", b"c", b"d", b"e"]


@pytest.mark.parametrize("ending", ENDINGS, ids=repr)
def test_empty_lines(ending: bytes) -> None:
    """Two endings in a row give one empty line each, no more."""
    assert LineSplitter(MAX).feed(ending * 2) == [b"", b""]


def test_lf_cr_is_two_endings() -> None:
    """LF followed by CR ends two lines: only CR swallows what follows it."""
    assert LineSplitter(MAX).feed(b"a\n\rb\n") == [b"a", b"", b"b"]


def test_partial_line_waits_for_its_end() -> None:
    """A line is reported only once its ending has arrived."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"HEL") == []
    assert splitter.feed(b"P") == []
    assert splitter.feed(b"\r\nWHO") == [b"HELP"]
    assert splitter.feed(b"\n") == [b"WHO"]


@pytest.mark.parametrize("second", [b"\n", b"\0"], ids=repr)
def test_cr_at_end_of_read_swallows_next_lf_or_nul(second: bytes) -> None:
    """A CR that ends a read still pairs with an LF or NUL starting the next."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(second + b"b\n") == [b"b"]


def test_cr_at_end_of_read_then_empty_read() -> None:
    """An empty read between CR and LF does not break the pair."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"") == []
    assert splitter.feed(b"\nb\r\n") == [b"b"]


def test_cr_at_end_of_read_then_text() -> None:
    """A lone CR before ordinary text ends the line; the text starts the next."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"b\r\n") == [b"b"]


def test_cr_swallows_only_one_lf() -> None:
    """CR LF LF is one line ending followed by an empty line."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"\n\n") == [b""]


def test_whole_and_bytewise_agree_on_a_session() -> None:
    """A realistic session splits the same whole and one byte at a time."""
    stream = (
        b"REGISTER alice password1\r\nLOGIN alice password1\r\n"
        b"PLAY tictactoe\nMOVE 5\r\0\r\nWHO\rQUIT\r\n"
    )
    whole = LineSplitter(MAX).feed(stream)
    assert whole == [
        b"REGISTER alice password1",
        b"LOGIN alice password1",
        b"PLAY tictactoe",
        b"MOVE 5",
        b"",
        b"WHO",
        b"QUIT",
    ]
    assert feed_pieces(LineSplitter(MAX), bytewise(stream)) == whole


# LineSplitter: over-long lines


def test_line_at_the_limit_is_accepted() -> None:
    """A line of exactly max_length bytes comes through whole."""
    line = b"x" * MAX
    assert LineSplitter(MAX).feed(line + b"\r\n") == [line]


def test_over_long_line_reported_once_then_next_line() -> None:
    """A line one byte over the limit is TOO_LONG, and the next line survives."""
    stream = b"x" * (MAX + 1) + b"\r\nHELP\r\n"
    assert LineSplitter(MAX).feed(stream) == [TOO_LONG, b"HELP"]


def test_over_long_line_byte_at_a_time() -> None:
    """Fed byte by byte, an over-long line is still reported exactly once."""
    stream = b"x" * (MAX + 10) + b"\r\nHELP\r\n"
    assert feed_pieces(LineSplitter(MAX), bytewise(stream)) == [TOO_LONG, b"HELP"]


def test_over_long_line_reported_before_its_end() -> None:
    """An over-long line is reported as soon as it passes the limit."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"x" * MAX) == []
    assert splitter.feed(b"x") == [TOO_LONG]
    assert splitter.feed(b"x" * (3 * MAX)) == []
    assert splitter.feed(b"x" * MAX + b"\nHELP\n") == [b"HELP"]


def test_very_long_line_in_chunks_reported_once() -> None:
    """Many reads of one huge line give a single TOO_LONG."""
    pieces = [b"y" * 1000] * 50 + [b"\r\n", b"WHO\r\n"]
    assert feed_pieces(LineSplitter(MAX), pieces) == [TOO_LONG, b"WHO"]


def test_over_long_line_ending_in_cr_at_end_of_read() -> None:
    """The LF after an over-long line's CR, in the next read, is swallowed."""
    splitter = LineSplitter(MAX)
    assert splitter.feed(b"z" * (MAX + 1)) == [TOO_LONG]
    assert splitter.feed(b"z\r") == []
    assert splitter.feed(b"\nnext\r\n") == [b"next"]


def test_consecutive_over_long_lines_each_reported() -> None:
    """Two over-long lines in a row give two TOO_LONG reports."""
    long = b"q" * (MAX + 1)
    stream = long + b"\n" + long + b"\nok\n"
    assert LineSplitter(MAX).feed(stream) == [TOO_LONG, TOO_LONG, b"ok"]
    assert feed_pieces(LineSplitter(MAX), [long, b"\n", long, b"\nok\n"]) == [
        TOO_LONG,
        TOO_LONG,
        b"ok",
    ]


def test_too_long_is_not_a_line() -> None:
    """TOO_LONG cannot be mistaken for the bytes of a real (empty) line."""
    assert TOO_LONG != b""
    assert not isinstance(TOO_LONG, bytes)


# LineSplitter: properties

_small_streams = st.lists(
    st.sampled_from([b"a", b"b", b"\r", b"\n", b"\0", b"\xff", b" "]), max_size=60
).map(b"".join)


@given(
    _small_streams,
    st.integers(min_value=1, max_value=6),
    st.lists(st.integers(min_value=0, max_value=60), max_size=20),
)
def test_any_split_gives_the_reference_lines(
    stream: bytes, max_length: int, points: list[int]
) -> None:
    """However a stream is cut into reads, the lines match the reference."""
    points = [p for p in points if p <= len(stream)]
    expected = reference_lines(stream, max_length)
    assert LineSplitter(max_length).feed(stream) == expected
    assert feed_pieces(LineSplitter(max_length), cut(stream, points)) == expected
    assert feed_pieces(LineSplitter(max_length), bytewise(stream)) == expected


_segments = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=MAX + 300),
        st.sampled_from([*ENDINGS, b""]),
    ),
    max_size=4,
)


@given(_segments, st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_at_real_limit(
    segments: list[tuple[int, bytes]], points: list[int]
) -> None:
    """Around the real 4096-byte limit, any cutting gives the reference lines."""
    stream = b"".join(b"m" * size + ending for size, ending in segments)
    points = [p % (len(stream) + 1) for p in points]
    expected = reference_lines(stream, MAX)
    assert feed_pieces(LineSplitter(MAX), cut(stream, points)) == expected


# TelnetFilter


def test_plain_text_passes_untouched() -> None:
    """Bytes without IAC come back unchanged, with nothing to answer."""
    telnet = TelnetFilter()
    assert telnet.feed(b"LOGIN alice password1\r\n") == (
        b"LOGIN alice password1\r\n",
        b"",
    )


@given(st.binary(max_size=200).map(lambda b: b.replace(b"\xff", b"")))
def test_no_iac_means_no_answer(data: bytes) -> None:
    """A client that sends no IAC is never sent anything and loses no bytes."""
    assert TelnetFilter().feed(data) == (data, b"")


def test_will_is_refused_with_dont() -> None:
    """IAC WILL option is stripped and answered with IAC DONT option."""
    text, reply = TelnetFilter().feed(b"ab" + cmd(WILL, ECHO) + b"cd")
    assert text == b"abcd"
    assert reply == cmd(DONT, ECHO)


def test_do_is_refused_with_wont() -> None:
    """IAC DO option is stripped and answered with IAC WONT option."""
    text, reply = TelnetFilter().feed(b"ab" + cmd(DO, SGA) + b"cd")
    assert text == b"abcd"
    assert reply == cmd(WONT, SGA)


@pytest.mark.parametrize("command", [WONT, DONT])
def test_wont_and_dont_need_no_answer(command: int) -> None:
    """IAC WONT and IAC DONT are stripped without any reply."""
    assert TelnetFilter().feed(b"a" + cmd(command, ECHO) + b"b") == (b"ab", b"")


def test_refusal_sent_once_per_option() -> None:
    """Repeating an offer does not repeat the refusal."""
    telnet = TelnetFilter()
    assert telnet.feed(cmd(WILL, ECHO) + cmd(WILL, ECHO)) == (b"", cmd(DONT, ECHO))
    assert telnet.feed(cmd(WILL, ECHO)) == (b"", b"")
    assert telnet.feed(cmd(DO, SGA)) == (b"", cmd(WONT, SGA))
    assert telnet.feed(cmd(DO, SGA)) == (b"", b"")


def test_each_option_and_direction_refused_separately() -> None:
    """Different options, and WILL and DO of one option, each get a refusal."""
    telnet = TelnetFilter()
    _, reply = telnet.feed(cmd(WILL, ECHO) + cmd(WILL, NAWS) + cmd(DO, ECHO))
    assert reply == cmd(DONT, ECHO) + cmd(DONT, NAWS) + cmd(WONT, ECHO)


def test_subnegotiation_is_stripped() -> None:
    """IAC SB ... IAC SE disappears whole, with no answer."""
    sub = cmd(SB, TTYPE) + b"\0xterm" + cmd(SE)
    assert TelnetFilter().feed(b"HE" + sub + b"LP\r\n") == (b"HELP\r\n", b"")


@pytest.mark.parametrize("command", [241, 242, 243, 244, 245, 246, 247, 248, 249])
def test_other_commands_are_stripped(command: int) -> None:
    """Two-byte commands such as NOP and GA are removed from the text."""
    assert TelnetFilter().feed(b"a" + cmd(command) + b"b") == (b"ab", b"")


def test_escaped_iac_is_byte_255() -> None:
    """IAC IAC stands for one data byte 255."""
    assert TelnetFilter().feed(b"a" + cmd(IAC) + b"b") == (b"a\xffb", b"")


def test_escaped_iac_split_across_reads() -> None:
    """IAC IAC split between reads still yields one byte 255."""
    telnet = TelnetFilter()
    assert telnet.feed(b"a\xff") == (b"a", b"")
    assert telnet.feed(b"\xffb") == (b"\xffb", b"")


def test_negotiation_split_across_reads() -> None:
    """IAC, WILL and the option in three reads are understood as one command."""
    telnet = TelnetFilter()
    assert telnet.feed(b"x\xff") == (b"x", b"")
    assert telnet.feed(bytes((WILL,))) == (b"", b"")
    assert telnet.feed(bytes((ECHO,)) + b"y") == (b"y", cmd(DONT, ECHO))


def test_subnegotiation_split_across_reads() -> None:
    """A subnegotiation spread over reads, even between IAC and SE, is removed."""
    telnet = TelnetFilter()
    assert telnet.feed(b"a" + cmd(SB)) == (b"a", b"")
    assert telnet.feed(bytes((NAWS, 0, 80, 0))) == (b"", b"")
    assert telnet.feed(bytes((24, IAC))) == (b"", b"")
    assert telnet.feed(bytes((SE,)) + b"b") == (b"b", b"")


@st.composite
def telnet_sessions(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """A stream of text and telnet commands, with its text and the answers."""
    stream, text, reply = b"", b"", b""
    refused: set[tuple[int, int]] = set()
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        kind = draw(st.sampled_from(["text", "escape", "option", "sub", "other"]))
        if kind == "text":
            chunk = draw(st.binary(max_size=8)).replace(b"\xff", b"")
            stream += chunk
            text += chunk
        elif kind == "escape":
            stream += cmd(IAC)
            text += b"\xff"
        elif kind == "option":
            verb = draw(st.sampled_from([WILL, WONT, DO, DONT]))
            option = draw(st.integers(min_value=0, max_value=255))
            stream += cmd(verb, option)
            if verb in (WILL, DO) and (verb, option) not in refused:
                refused.add((verb, option))
                reply += cmd(DONT if verb == WILL else WONT, option)
        elif kind == "sub":
            option = draw(st.integers(min_value=0, max_value=254))
            payload = draw(st.binary(max_size=8)).replace(b"\xff", b"")
            stream += cmd(SB, option) + payload + cmd(SE)
        else:
            stream += cmd(draw(st.integers(min_value=SE, max_value=249)))
    return stream, text, reply


@given(
    telnet_sessions(),
    st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_split_strips_and_answers_the_same(
    session: tuple[bytes, bytes, bytes], points: list[int]
) -> None:
    """However a telnet stream is cut into reads, text and answers are the same."""
    stream, text, reply = session
    points = [p % (len(stream) + 1) for p in points]
    for pieces in ([stream], cut(stream, points), bytewise(stream)):
        telnet = TelnetFilter()
        got_text, got_reply = b"", b""
        for piece in pieces:
            more_text, more_reply = telnet.feed(piece)
            got_text += more_text
            got_reply += more_reply
        assert (got_text, got_reply) == (text, reply)


def test_filter_then_splitter_across_reads() -> None:
    """Commands inside a line, split over reads, leave the line intact."""
    telnet, splitter = TelnetFilter(), LineSplitter(MAX)
    stream = b"LOG" + cmd(DO, ECHO) + b"IN al" + cmd(SB, NAWS, 0, 80, 0, 24)
    stream += cmd(SE) + b"ice pw\r" + cmd(241) + b"\nWHO\r\n"
    lines: list[bytes | None] = []
    answers = b""
    for piece in bytewise(stream):
        text, answer = telnet.feed(piece)
        answers += answer
        lines += splitter.feed(text)
    assert lines == [b"LOGIN alice pw", b"WHO"]
    assert answers == cmd(WONT, ECHO)


def test_endless_subnegotiation_is_not_buffered() -> None:
    """A subnegotiation that never ends is dropped as it comes, not held."""
    telnet = TelnetFilter()
    text, _ = telnet.feed(bytes([IAC, SB, 24]))
    for _ in range(100):
        more, _ = telnet.feed(b"x" * 10_000)
        text += more
    assert text == b""
    assert len(telnet._pending) < 10
    text, _ = telnet.feed(bytes([IAC, SE]) + b"WHO")
    assert text == b"WHO"


def test_escaped_255_inside_subnegotiation_does_not_end_it() -> None:
    """IAC IAC inside a subnegotiation is data, so IAC IAC SE does not end it."""
    telnet = TelnetFilter()
    stream = bytes([IAC, SB, 24, IAC, IAC, SE]) + b"leak" + bytes([IAC, SE]) + b"ok"
    assert telnet.feed(stream) == (b"ok", b"")
