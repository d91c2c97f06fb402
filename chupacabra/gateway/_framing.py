"""Turning a raw byte stream from telnet or netcat into lines."""

from __future__ import annotations

import re

IAC = 255
DONT, DO, WONT, WILL = 254, 253, 252, 251
SB, SE = 250, 240

_LINE_END = re.compile(rb"[\r\n]")


class TelnetFilter:
    """
    Strip telnet commands from the stream and refuse every option.

    A client that offers or asks for an option is told no once per option
    (``DONT`` for ``WILL``, ``WONT`` for ``DO``), which keeps it in plain
    line mode.  A client that sends no commands is never sent any.
    Commands split across reads are handled.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._refused: set[tuple[int, int]] = set()
        self._in_sub = False

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Return the text in ``data`` and the bytes to answer with."""
        data = self._pending + data
        self._pending = b""
        if IAC not in data and not self._in_sub:
            return data, b""

        text = bytearray()
        reply = bytearray()
        i = 0
        n = len(data)
        while i < n:
            if self._in_sub:
                i = self._skip_sub(data, i)
                continue
            j = data.find(IAC, i)
            if j < 0:
                text += data[i:]
                break
            text += data[i:j]
            if j + 1 >= n:
                self._pending = data[j:]
                break
            command = data[j + 1]
            if command == IAC:
                # An escaped 255: never part of UTF-8 text, so let the
                # decoder reject the line.
                text.append(IAC)
                i = j + 2
            elif command in (WILL, WONT, DO, DONT):
                if j + 2 >= n:
                    self._pending = data[j:]
                    break
                reply += self._answer(command, data[j + 2])
                i = j + 3
            elif command == SB:
                # Subnegotiation is dropped as it arrives, so that an endless
                # one costs nothing to hold.
                self._in_sub = True
                i = j + 2
            else:
                i = j + 2
        return bytes(text), bytes(reply)

    def _skip_sub(self, data: bytes, i: int) -> int:
        """Skip subnegotiation up to and past IAC SE; IAC IAC is data."""
        n = len(data)
        while True:
            j = data.find(IAC, i)
            if j < 0:
                return n
            if j + 1 >= n:
                self._pending = data[j:]
                return n
            if data[j + 1] == SE:
                self._in_sub = False
                return j + 2
            i = j + 2

    def _answer(self, command: int, option: int) -> bytes:
        if command in (WONT, DONT) or (command, option) in self._refused:
            return b""
        self._refused.add((command, option))
        return bytes((IAC, DONT if command == WILL else WONT, option))


#: What L{LineSplitter} yields for a line that was too long.
TOO_LONG = None


class LineSplitter:
    """
    Split bytes into lines ending in CR LF, LF, CR or CR NUL.

    A line longer than ``max_length`` is reported once, as L{TOO_LONG}, as
    soon as it is seen to be too long, and the rest of it is skipped.
    """

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self._buffer = b""
        self._after_cr = False
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | None]:
        if data and self._after_cr:
            self._after_cr = False
            if data[0] in (10, 0):
                data = data[1:]
        buffer = self._buffer + data
        lines: list[bytes | None] = []
        start = 0
        while True:
            found = _LINE_END.search(buffer, start)
            if found is None:
                break
            end = found.start()
            if self._skipping:
                self._skipping = False
            elif end - start > self.max_length:
                lines.append(TOO_LONG)
            else:
                lines.append(buffer[start:end])
            start = end + 1
            if buffer[end] == 13:  # CR: swallow the LF or NUL after it
                if start < len(buffer):
                    if buffer[start] in (10, 0):
                        start += 1
                else:
                    self._after_cr = True
        rest = buffer[start:]
        if len(rest) > self.max_length:
            if not self._skipping:
                lines.append(TOO_LONG)
            self._skipping = True
            rest = b""
        self._buffer = rest
        return lines
