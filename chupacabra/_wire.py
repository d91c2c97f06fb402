"""
The Perspective Broker connection both ends of a gateway's link use.

It differs from L{pb.Broker} in these ways, all for speed and size:

- no Nagle: pushes and answers are small writes the other side does not
  answer at once, so with Nagle each would wait for a delayed ACK;
- banana encoding appends to one buffer, and decoding walks its buffer
  with an index instead of copying the rest of it after every item, so a
  read holding many messages costs its size, not its size squared;
- arguments and answers made only of strings, numbers and None, alone or
  in a tuple or list (a move, a JSON update), skip jelly's general
  machinery, in both directions, for the same form on the wire;
- no cap of 1,024 exported objects per connection: a gateway exports
  every online player to each game service and a game service every
  match it told a gateway about.  The link is authenticated.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.logger import Logger
from twisted.spread import banana, jelly, pb

pb.MAX_BROKER_REFS = max(pb.MAX_BROKER_REFS, 10_000_000)

_log = Logger()
#: What a malformed stream raises in banana, jelly or PB's dispatch.
_BROKEN_PEER = (
    banana.BananaError,
    jelly.InsecureJelly,
    pb.ProtocolError,
    NotImplementedError,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
)

_LIST, _INT, _STRING, _NEG, _FLOAT, _LONGINT, _LONGNEG, _VOCAB = range(0x80, 0x88)
#: What Twisted's banana allows for a number's prefix, in bytes.
PREFIX_LIMIT = 64


_TUPLE, _LIST_WORD, _UNICODE, _NONE, _DICTIONARY = (
    b"tuple",
    b"list",
    b"unicode",
    b"None",
    b"dictionary",
)
_NO_VALUE = object()


def _plain_leaf(value: Any) -> Any:
    """jelly's form of a str, bytes, int (not bool) or None, else _NO_VALUE."""
    kind = type(value)
    if kind is str:
        return [_UNICODE, value.encode("utf-8")]
    if kind is bytes or kind is int:
        return value
    if value is None:
        return [_NONE]
    return _NO_VALUE


def plain_jelly(value: Any) -> Any:
    """
    What jelly makes of a plain leaf, or of a tuple or list of them (or an
    empty dict); _NO_VALUE for anything else.
    """
    kind = type(value)
    if kind is tuple or kind is list:
        out = [_TUPLE if kind is tuple else _LIST_WORD]
        for item in value:
            leaf = _plain_leaf(item)
            if leaf is _NO_VALUE:
                return _NO_VALUE
            out.append(leaf)
        return out
    if kind is dict and not value:
        return [_DICTIONARY]
    return _plain_leaf(value)


def _plain_unleaf(sexp: Any) -> Any:
    kind = type(sexp)
    if kind is bytes or kind is int:
        return sexp
    if kind is list and sexp:
        head = sexp[0]
        if head == _UNICODE and len(sexp) == 2 and type(sexp[1]) is bytes:
            return sexp[1].decode("utf-8")
        if head == _NONE and len(sexp) == 1:
            return None
    return _NO_VALUE


def plain_unjelly(sexp: Any) -> Any:
    """The inverse of L{plain_jelly}: _NO_VALUE for what it does not make."""
    if type(sexp) is list and sexp:
        head = sexp[0]
        if head == _TUPLE or head == _LIST_WORD:
            items = []
            for item in sexp[1:]:
                value = _plain_unleaf(item)
                if value is _NO_VALUE:
                    return _NO_VALUE
                items.append(value)
            return tuple(items) if head == _TUPLE else items
        if head == _DICTIONARY and len(sexp) == 1:
            return {}
    return _plain_unleaf(sexp)


#: The largest int banana sends as a plain INT.
_LARGEST_INT = 2**31 - 1


def _b128(number: int, out: bytearray) -> None:
    """A non-negative number in base 128, least significant digit first."""
    if number == 0:
        out.append(0)
    while number:
        out.append(number & 0x7F)
        number >>= 7


def _number(data: bytes, start: int, end: int) -> int:
    """A base-128 number, least significant digit first."""
    value = 0
    for shift, i in enumerate(range(start, end)):
        value |= data[i] << (7 * shift)
    return value


class Broker(pb.Broker):
    """A L{pb.Broker} without Nagle, decoding in linear time."""

    def connectionMade(self) -> None:
        transport: Any = self.transport
        if hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)
        super().connectionMade()

    def serialize(
        self,
        object: Any,
        perspective: Any = None,
        method: Any = None,
        args: Any = None,
        kw: Any = None,
    ) -> Any:
        sexp = plain_jelly(object)
        if sexp is _NO_VALUE:
            return super().serialize(object, perspective, method, args, kw)
        return sexp

    def unserialize(self, sexp: Any, perspective: Any = None) -> Any:
        value = plain_unjelly(sexp)
        if value is _NO_VALUE:
            return super().unserialize(sexp, perspective)
        return value

    def sendEncoded(self, obj: Any) -> None:
        """Write ``obj`` in banana, byte for byte as L{banana.Banana} would."""
        out = bytearray()
        self._encode_into(obj, out)
        transport: Any = self.transport
        transport.write(bytes(out))

    def _encode_into(self, obj: Any, out: bytearray) -> None:
        kind = type(obj)
        if kind is bytes:
            symbol = None
            if self.currentDialect == b"pb":
                symbol = self.outgoingSymbols.get(obj)
            if symbol is not None:
                _b128(symbol, out)
                out.append(_VOCAB)
            elif len(obj) > banana.SIZE_LIMIT:
                raise banana.BananaError(
                    f"byte string is too long to send ({len(obj)})"
                )
            else:
                _b128(len(obj), out)
                out.append(_STRING)
                out += obj
        elif kind is list or kind is tuple:
            if len(obj) > banana.SIZE_LIMIT:
                raise banana.BananaError(f"list/tuple is too long to send ({len(obj)})")
            _b128(len(obj), out)
            out.append(_LIST)
            for item in obj:
                self._encode_into(item, out)
        elif kind is int and 0 <= obj <= _LARGEST_INT:
            _b128(obj, out)
            out.append(_INT)
        else:
            # Negative and long numbers, floats, anything odd: Twisted's way.
            chunks: list[bytes] = []
            self._encode(obj, chunks.append)
            out += b"".join(chunks)

    def dataReceived(self, chunk: bytes) -> None:
        try:
            self._decode(chunk)
        except _BROKEN_PEER as e:
            self.broken(e)

    def broken(self, error: BaseException) -> None:
        """
        Drop a peer that broke the protocol (or is not PB at all): one
        warning, as it is not a failure of ours to trace back.
        """
        transport: Any = self.transport
        if transport.disconnecting:
            return
        _log.warn(
            "dropped a PB connection from {peer} that broke the protocol: {why}",
            peer=str(transport.getPeer()),
            why=f"{type(error).__name__}: {error}"[:200],
        )
        transport.loseConnection()

    def localObjectForID(self, luid: Any) -> Any:
        found = super().localObjectForID(luid)
        if type(found).__module__ == pb.__name__:
            # Twisted's own login objects: whoever is calling has not
            # logged in, and a malformed call is theirs to answer for.
            return _BeforeLogin(found, self)
        return found

    def _decode(self, chunk: bytes) -> None:
        """Decode the same items, with the same limits, as L{banana.Banana}."""
        data = self.buffer + chunk if self.buffer else chunk
        size = len(data)
        stack = self.listStack
        got = self.gotItem
        limit: int = self.prefixLimit or PREFIX_LIMIT
        pos = 0
        while pos < size:
            start = pos
            while pos < size and data[pos] < 0x80:
                pos += 1
            if pos - start > limit:
                raise banana.BananaError("Security precaution: prefix too long")
            if pos == size:
                self.buffer = data[start:]
                return
            num = _number(data, start, pos)
            kind = data[pos]
            pos += 1
            item: Any
            if kind == _STRING or kind == _FLOAT:
                length = 8 if kind == _FLOAT else num
                if length > banana.SIZE_LIMIT:
                    raise banana.BananaError("Security precaution: String too long.")
                if size - pos < length:
                    self.buffer = data[start:]
                    return
                raw = data[pos : pos + length]
                pos += length
                item = raw if kind == _STRING else struct.unpack("!d", raw)[0]
            elif kind == _LIST:
                if num > banana.SIZE_LIMIT:
                    raise banana.BananaError("Security precaution: List too long.")
                stack.append((num, []))
            elif kind == _INT or kind == _LONGINT:
                item = num
            elif kind == _NEG or kind == _LONGNEG:
                item = -num
            elif kind == _VOCAB and self.currentDialect == b"pb":
                item = self.incomingVocabulary[num]
            else:
                raise NotImplementedError(f"Invalid Type Byte {kind!r}")
            if kind != _LIST:
                got(item)
            while stack and len(stack[-1][1]) == stack[-1][0]:
                got(stack.pop()[1])
            if not stack and getattr(self.transport, "disconnecting", False):
                self.buffer = b""
                return  # what follows a refused message is not read
        self.buffer = b""


class _BeforeLogin:
    """A login object of Twisted's, answering malformed calls with an error."""

    def __init__(self, target: Any, broker: Broker) -> None:
        self.target = target
        self.broker = broker

    def remoteMessageReceived(
        self, broker: Any, message: Any, args: Any, kw: Any
    ) -> Any:
        try:
            return self.target.remoteMessageReceived(broker, message, args, kw)
        except pb.Error:
            raise
        except Exception as e:
            self.broker.broken(e)
            raise pb.Error("malformed call before login") from None
