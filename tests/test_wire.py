"""The PB connection both ends of a link use: same items, less cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import SECRET, World
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.spread import banana, jelly, pb

from chupacabra._wire import _NO_VALUE as NO_VALUE
from chupacabra._wire import Broker, plain_jelly, plain_unjelly
from chupacabra.gateway._line import LineFactory
from chupacabra.gateway._link import _BrokerFactory
from chupacabra.service._pb import server_factory


class NoDelayTransport(StringTransport):
    """A TCP-like transport that remembers TCP_NODELAY."""

    no_delay = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay = enabled


def _decoded(broker_class: type[pb.Broker], chunks: list[bytes]) -> list[Any]:
    broker = broker_class()
    broker.makeConnection(StringTransport())
    broker.currentDialect = b"pb"
    items: list[Any] = []
    broker.expressionReceived = items.append  # type: ignore[method-assign]
    for chunk in chunks:
        broker.dataReceived(chunk)
    return items


def _encoded(value: Any) -> bytes:
    encoder = banana.Banana()
    encoder.currentDialect = b"pb"
    transport = StringTransport()
    encoder.makeConnection(transport)
    transport.clear()
    encoder.sendEncoded(jelly.jelly(value))
    return transport.value()


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=20,
)


@given(st.lists(values, min_size=1, max_size=5), st.data())
def test_decodes_as_twisted_does_however_the_bytes_arrive(
    messages: list[Any], data: st.DataObject
) -> None:
    """Every message, split anywhere, decodes to exactly Twisted's items."""
    stream = b"".join(_encoded(message) for message in messages)
    cuts = sorted(
        data.draw(st.lists(st.integers(0, len(stream)), max_size=len(stream)))
    )
    chunks = [
        stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)
    ]
    ours = _decoded(Broker, chunks)
    assert ours == _decoded(pb.Broker, [stream])
    assert len(ours) == len(messages)


def test_vocabulary_words_decode() -> None:
    """Words PB abbreviates (like "message") come back whole."""
    stream = _encoded(["message", 1, "remote", ("answer", b"x")])
    assert _decoded(Broker, [stream]) == _decoded(pb.Broker, [stream])


def _b128(number: int) -> bytes:
    parts: list[bytes] = []
    banana.int2b128(number, parts.append)
    return b"".join(parts)


BROKEN_STREAMS = [
    b"\x01" * 65,
    b"\x01" * 65 + b"\x81",
    _b128(banana.SIZE_LIMIT + 1) + b"\x82",
    _b128(banana.SIZE_LIMIT + 1) + b"\x80",
    b"\x01\x8f",
]


@pytest.mark.parametrize("stream", BROKEN_STREAMS)
@pytest.mark.parametrize("decode", ["twisted", "ours"])
def test_refuses_what_twisted_refuses(stream: bytes, decode: str) -> None:
    """What Twisted's decoder refuses, ours refuses too."""
    broker = pb.Broker() if decode == "twisted" else Broker()
    broker.makeConnection(StringTransport())
    broker.currentDialect = b"pb"
    with pytest.raises((banana.BananaError, NotImplementedError)):
        if isinstance(broker, Broker):
            broker._decode(stream)
        else:
            broker.dataReceived(stream)


def _service_broker(world: World) -> tuple[Any, StringTransport]:
    """A game service's PB connection over a StringTransport."""
    broker = server_factory(world.service, SECRET).buildProtocol(None)
    transport = StringTransport()
    broker.makeConnection(transport)
    return broker, transport


def _warnings_while(run: Callable[[], None]) -> list[str]:
    """The warnings logged while ``run`` runs."""
    warnings: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") == LogLevel.warn:
            warnings.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        run()
    finally:
        globalLogPublisher.removeObserver(observe)
    return warnings


@pytest.mark.parametrize(
    "stream",
    [
        *BROKEN_STREAMS,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x02\x80\x05\x82hello\x01\x81",
        b"\x01\x80\x03\x82bad",
        b"\x01\x80\x01\x87",
    ],
)
def test_a_peer_that_breaks_the_protocol_is_dropped_quietly(
    world: World, stream: bytes
) -> None:
    """
    Garbage on the game service's PB port closes that connection with one
    warning, before any login and without a traceback; the link carries on.
    """
    broker, transport = _service_broker(world)

    def feed() -> None:
        for byte in range(len(stream)):
            if transport.disconnecting:
                break
            broker.dataReceived(stream[byte : byte + 1])
        broker.dataReceived(b"\x01\x8f")

    warnings = _warnings_while(feed)
    assert transport.disconnecting
    assert all("broke the protocol" in w for w in warnings)
    first, _, _ = world.pair()
    assert first.send("MOVE 5")[0].startswith("OK")


@pytest.mark.parametrize(
    "arguments",
    [
        [b"tuple", [b"unicode", b"a"], [b"unicode", b"b"]],
        [b"tuple", [b"nosuchtype", b"x"]],
        [b"tuple", *[[b"list"] * 1] * 3, [b"list", [b"list", [b"list"]]]],
    ],
)
def test_a_malformed_call_before_login_is_answered_and_dropped(
    world: World, arguments: list[Any]
) -> None:
    """
    A well-framed call to PB's login object that makes no sense gets an
    error answer and loses its connection, with one warning, no traceback.
    """
    broker, transport = _service_broker(world)
    call = [b"message", 1, b"root", b"login", 1, arguments, [b"dictionary"]]
    warnings = _warnings_while(
        lambda: broker.dataReceived(_sent(pb.Broker, b"pb") + _sent(pb.Broker, call))
    )
    assert transport.disconnecting
    assert b"malformed call before login" in transport.value()
    assert len(warnings) == 1 and "broke the protocol" in warnings[0]


def test_a_long_read_of_many_messages_decodes_every_one() -> None:
    """Thousands of messages in one read all arrive, in order."""
    messages = [["event", {"match": str(n), "board": [n] * 9}] for n in range(5000)]
    stream = b"".join(_encoded(m) for m in messages)
    decoded = _decoded(Broker, [stream])
    assert [jelly.unjelly(item) for item in decoded] == messages


def test_both_ends_of_the_link_turn_nagle_off() -> None:
    """The service's broker and the gateway's set TCP_NODELAY when connected."""
    world = World()
    try:
        service_broker = server_factory(world.service, SECRET).buildProtocol(None)
        gateway_broker = _BrokerFactory().buildProtocol(None)
        for broker in (service_broker, gateway_broker):
            transport = NoDelayTransport()
            broker.makeConnection(transport)
            assert transport.no_delay
    finally:
        world.gateway.stopService()


def test_line_connections_turn_nagle_off(world: World) -> None:
    """A player's replies and pushes are not held back for a delayed ACK."""
    protocol = LineFactory(world.gateway, clock=world.reactor).buildProtocol(None)
    transport = NoDelayTransport()
    protocol.makeConnection(transport)
    assert transport.no_delay
    protocol.connectionLost(None)


def test_more_than_a_thousand_players_share_one_link(world: World) -> None:
    """PB's usual cap of 1,024 exported objects does not drop the link."""
    players = [world.player(f"p{n}") for n in range(1100)]
    assert world.link.up
    assert len(world.gateway.players) == 1100
    first, second = players[-2:]
    first.send("PLAY tictactoe")
    assert second.send("PLAY tictactoe")[0].startswith("OK")
    assert world.link.up


plain_leaves = (
    st.text() | st.binary() | st.none() | st.integers(-(2**80), 2**80) | st.booleans()
)
anything = st.recursive(
    plain_leaves | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(anything)
def test_plain_values_cross_as_jelly_would_send_them(value: Any) -> None:
    """Whatever the shortcut encodes, it encodes exactly as jelly does."""
    sexp = plain_jelly(value)
    if sexp is not NO_VALUE:
        assert sexp == jelly.jelly(value)


shortcut_leaves = st.text() | st.binary() | st.none() | st.integers(-(2**80), 2**80)


@given(st.lists(shortcut_leaves, max_size=6), st.booleans())
def test_moves_and_answers_take_the_shortcut(items: list[Any], as_tuple: bool) -> None:
    """Plain leaves alone or in a flat tuple or list go both ways unjellied."""
    for value in [tuple(items) if as_tuple else items, *items]:
        sexp = plain_jelly(value)
        assert sexp == jelly.jelly(value)
        assert plain_unjelly(sexp) == value
        assert type(plain_unjelly(sexp)) is type(value)


def test_booleans_and_nesting_go_through_jelly() -> None:
    """jelly has its own forms for these: the shortcut leaves them alone."""
    for value in [True, (1, False), ("a", ("b",)), {"a": 1}, 1.5, [[]]]:
        assert plain_jelly(value) is NO_VALUE


@given(anything)
def test_anything_unjellies_as_jelly_would(value: Any) -> None:
    """Decoding takes the shortcut only where it gives jelly's answer."""
    sexp = jelly.jelly(value)
    shortcut = plain_unjelly(sexp)
    if shortcut is not NO_VALUE:
        assert shortcut == jelly.unjelly(sexp)
        assert type(shortcut) is type(jelly.unjelly(sexp))


def test_bad_text_fails_as_jelly_does() -> None:
    """A string that is not UTF-8 is refused, not passed on as bytes."""
    for decode in (plain_unjelly, jelly.unjelly):
        try:
            decode([b"tuple", [b"unicode", b"\xff"]])
        except UnicodeDecodeError:
            continue
        raise AssertionError(f"{decode} took bad UTF-8")


def _sent(broker_class: type[pb.Broker], value: Any) -> bytes:
    broker = broker_class()
    transport = StringTransport()
    broker.makeConnection(transport)
    broker.currentDialect = b"pb"
    transport.clear()
    broker.sendEncoded(value)
    return transport.value()


sexps = st.recursive(
    st.binary(max_size=12)
    | st.sampled_from([b"message", b"answer", b"tuple", b"unicode", b"remote"])
    | st.integers(-(2**100), 2**100)
    | st.floats(allow_nan=False)
    | st.booleans(),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner),
    max_leaves=25,
)


@given(sexps)
def test_encodes_byte_for_byte_as_twisted_does(value: Any) -> None:
    """What the broker writes is exactly what Twisted's banana writes."""
    assert _sent(Broker, value) == _sent(pb.Broker, value)


def test_refuses_to_encode_what_twisted_refuses() -> None:
    """Objects banana has no form for fail the same way."""
    for value in [object(), [1, object()], 2**500]:
        for broker_class in (Broker, pb.Broker):
            try:
                _sent(broker_class, value)
            except banana.BananaError:
                continue
            raise AssertionError(f"{broker_class} sent {value!r}")
