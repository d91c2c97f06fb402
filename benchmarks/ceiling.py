"""
The ceiling: a line relay with one PB round trip per line and nothing else.

Two processes stand in for the gateway and the game service with no game
logic, no store and no accounts: ``relay`` reads lines and, for each one,
makes one ``callRemote`` to ``back`` with the line as a string, then writes
the short string it answers back to the client.  Whatever rate the load
generator gets from this pair is the most the real gateway and game
service could hope for on the same machine and Twisted.

Run ``python benchmarks/ceiling.py back --port P`` and ``python
benchmarks/ceiling.py relay --port L --back P``; ``load.py`` starts both.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: What the back end answers to every line: a JSON reply, as the product's.
REPLY = '{"ok": true, "result": {}}'


def _back(port: int) -> None:
    from twisted.internet import reactor
    from twisted.spread import pb

    class Back(pb.Root):
        """Answers every relayed line with the same short string."""

        def remote_relay(self, line: str) -> str:
            return REPLY

    reactor.listenTCP(port, pb.PBServerFactory(Back()), interface="127.0.0.1")
    reactor.run()


def _relay(port: int, back: int) -> None:
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory
    from twisted.protocols.basic import LineOnlyReceiver
    from twisted.python.failure import Failure
    from twisted.spread import pb

    state: dict[str, Any] = {"root": None}

    class Relay(LineOnlyReceiver):
        """One client: each line goes to the back end, its answer comes back."""

        delimiter = b"\n"
        MAX_LENGTH = 4096

        def lineReceived(self, line: bytes) -> None:
            root = state["root"]
            if root is None:
                self.sendLine(b'{"ok": false, "error": {"code": "unavailable"}}')
                return
            text = line.rstrip(b"\r").decode("utf-8")
            d = root.callRemote("relay", text)
            d.addCallbacks(self._answer, self._failed)

        def _answer(self, answer: str) -> None:
            self.sendLine(answer.encode("utf-8"))

        def _failed(self, failure: Failure) -> None:
            self.sendLine(b'{"ok": false, "error": {"code": "internal"}}')

    def linked(root: Any) -> None:
        state["root"] = root

    def lost(failure: Failure) -> None:
        print(f"relay: cannot reach the back end: {failure.getErrorMessage()}")
        reactor.stop()

    client = pb.PBClientFactory()
    reactor.connectTCP("127.0.0.1", back, client)
    client.getRootObject().addCallbacks(linked, lost)
    reactor.listenTCP(port, Factory.forProtocol(Relay), interface="127.0.0.1")
    reactor.run()


def command(role: str, port: int, back: int | None = None) -> list[str]:
    """The command line that runs one half of the ceiling."""
    line = [sys.executable, __file__, role, "--port", str(port)]
    if back is not None:
        line += ["--back", str(back)]
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("role", choices=["back", "relay"])
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--back", type=int, help="(relay) the back end's port")
    args = parser.parse_args(argv)
    if args.role == "back":
        _back(args.port)
    elif args.back is None:
        parser.error("relay needs --back PORT")
    else:
        _relay(args.port, args.back)


if __name__ == "__main__":
    main()
