"""Matchmaking queues and live matches inside a game service."""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer, task
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

from ..errors import ServiceError
from ..games import Game, MoveError, Outcome

_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
#: Seconds between notes in the store that the service is alive.
HEARTBEAT = 5.0
#: Seconds between log lines summing up the matches played.
REPORT_INTERVAL = 60.0

Event = dict[str, Any]


def _ignore_push_failure(failure: Any, name: str) -> None:
    Match.log.debug("could not push to {player}: {why}", player=name, why=failure.value)


@attrs.define(eq=False)
class Listener:
    """Where a player's updates go: the reference their gateway gave us."""

    ref: Any
    broker: Any


class Match(pb.Referenceable):
    """
    One live match: its seats, position, move log and turn clock.

    Gateways hold a remote reference to it and call ``move``, ``forfeit``
    and ``state`` on behalf of the player they name.  The service only
    trusts gateways that logged in with the shared secret.  With a store,
    every change is written before anyone is answered or told.
    """

    log = Logger()

    def __init__(
        self,
        service: MatchService,
        match_id: str,
        game: Game[Any, Any],
        players: list[str],
    ) -> None:
        self.service = service
        self.id = match_id
        self.game = game
        self.players = players
        self.state = game.new_state(len(players))
        self.moves: list[str] = []
        self.outcome: Outcome | None = None
        self._timer: IDelayedCall | None = None
        self._turn_started = service.clock.seconds()
        #: The broker of the remote call being answered, if any.
        self._broker: Any = None
        #: Moves and forfeits waiting for the one being stored.
        self._queue: deque[defer.Deferred[None]] = deque()
        self._changing = False

    # Views of the match

    def to_move(self) -> str | None:
        if self.outcome is not None:
            return None
        seat = self.game.to_move(self.state)
        return None if seat is None else self.players[seat]

    def summary(self) -> Event:
        """The match's identity and whose turn it is."""
        return {
            "match": self.id,
            "game": self.game.name,
            "players": list(self.players),
            "to_move": self.to_move(),
        }

    def snapshot(self) -> Event:
        """Everything a player needs to pick the match up again."""
        event = {"event": "match-state", **self.summary()}
        event.update(self._position())
        event["moves"] = list(self.moves)
        event["labels"] = list(self.game.seat_labels)
        if self.outcome is None:
            elapsed = self.service.clock.seconds() - self._turn_started
            event["seconds_left"] = max(0, round(self.service.turn_timeout - elapsed))
        else:
            event["winner"] = self._winner_name()
            event["reason"] = self.outcome.reason
        return event

    def _position(self) -> Event:
        return {
            "board": self.game.render_json(self.state),
            "text": self.game.render_text(self.state),
        }

    def _winner_name(self) -> str | None:
        assert self.outcome is not None
        winner = self.outcome.winner
        return None if winner is None else self.players[winner]

    # Life cycle

    def start(self) -> None:
        event = {"event": "match-started", **self.summary()}
        event["labels"] = list(self.game.seat_labels)
        event.update(self._position())
        self._start_turn()
        self.service.started += 1
        self._push(event, with_ref=True)

    def resume(self, moves: list[str], elapsed: float) -> None:
        """
        Rebuild the position from its moves after a restart.

        The player to move keeps the time they had used, ``elapsed``; the
        time the service was down is not charged to them.  Moves that
        already end the game leave the match over, with no clock.
        """
        for text in moves:
            self.state, move = self.game.play(self.state, text)
            self.moves.append(self.game.format_move(move))
        self.outcome = self.game.outcome(self.state)
        if self.outcome is None:
            self._start_turn(elapsed)

    def _start_turn(self, elapsed: float = 0.0) -> None:
        self._cancel_timer()
        self._turn_started = self.service.clock.seconds() - elapsed
        self._timer = self.service.clock.callLater(
            max(0.0, self.service.turn_timeout - elapsed), self._time_out
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _time_out(self) -> None:
        self._timer = None
        seat = self.game.to_move(self.state)
        if seat is None or self.outcome is not None:
            return
        self._end(_others_win(seat, len(self.players), "time"))

    def _end(
        self, outcome: Outcome, caller: _Caller | None = None
    ) -> defer.Deferred[None]:
        self._cancel_timer()
        self.outcome = outcome
        self.service.finished(self)
        winner = self._winner_name()
        self.service.ended += 1
        ended = {
            "event": "match-ended",
            "match": self.id,
            "players": list(self.players),
            "winner": winner,
            "reason": outcome.reason,
        }
        d = self.service.durably(
            "finish_match",
            self.id,
            winner,
            outcome.reason,
            self.service.clock.seconds(),
        )
        d.addErrback(self._not_stored, "the end of")
        d.addCallback(lambda _: self._push(ended, caller=caller))
        return d

    def _not_stored(self, failure: Failure, what: str) -> None:
        self.log.failure(
            "could not store {what} match {match}", failure, what=what, match=self.id
        )

    def _push(
        self, event: Event, with_ref: bool = False, caller: _Caller | None = None
    ) -> None:
        skip = None if caller is None else caller.broker
        names = self.service.push_many(
            self.players, event, self if with_ref else None, skip
        )
        if caller is not None and names:
            caller.events.append(event)
            caller.recipients = names

    # What a gateway may ask of the match

    def _seat_of(self, player: str) -> int:
        try:
            return self.players.index(player)
        except ValueError:
            raise ServiceError("no-match", f"you are not playing in match {self.id}")

    def remoteMessageReceived(
        self, broker: Any, message: bytes, args: Any, kw: Any
    ) -> Any:
        self._broker = broker
        try:
            return super().remoteMessageReceived(broker, message, args, kw)
        finally:
            self._broker = None

    def remote_state(self, player: str) -> Event:
        self._seat_of(player)
        return self.snapshot()

    def _one_at_a_time(self, change: Callable[[], Any]) -> defer.Deferred[Any]:
        """
        Run ``change`` (a move or a forfeit) once the one before it is
        stored and told, so that each is judged against a position that
        is on disk and known to the players, in the order they came.
        """
        if not self._changing:
            return self._run(change)
        turn: defer.Deferred[None] = defer.Deferred()
        self._queue.append(turn)
        return turn.addCallback(lambda _: self._run(change))

    def _run(self, change: Callable[[], Any]) -> defer.Deferred[Any]:
        self._changing = True

        def done(result: Any) -> Any:
            self._changing = False
            if self._queue:
                self._queue.popleft().callback(None)
            return result

        return maybeDeferred(change).addBoth(done)

    def remote_move(self, player: str, text: str) -> defer.Deferred[str]:
        """
        Play ``text`` for ``player``; answer with JSON, once it is stored.

        The answer holds the reply and the updates for players on the
        calling gateway, which therefore get no separate push: one message
        each way per move, like any remote call.
        """
        caller = _Caller(self._broker)
        return self._one_at_a_time(lambda: self._move(caller, player, text))

    def _move(self, caller: _Caller, player: str, text: str) -> defer.Deferred[str]:
        seat = self._seat_of(player)
        if self.outcome is not None:
            raise ServiceError("game-over", f"match {self.id} is over")
        if self.game.to_move(self.state) != seat:
            raise ServiceError("not-your-turn", f"it is {self.to_move()}'s turn")
        try:
            state, move = self.game.play(self.state, str(text))
        except MoveError as e:
            raise ServiceError(e.code, e.message)

        # Nothing else changes the match until this is stored and told.
        previous, elapsed = (
            self.state,
            self.service.clock.seconds() - self._turn_started,
        )
        self.state = state
        written = self.game.format_move(move)
        self.moves.append(written)
        self._cancel_timer()
        number, now = len(self.moves), self.service.clock.seconds()
        d = self.service.durably("record_move", self.id, number, player, written, now)

        def stored(_: object) -> defer.Deferred[str] | str:
            outcome = self.game.outcome(self.state)
            if outcome is None:
                self._start_turn()
            to_move = None if outcome else self.to_move()
            self._push(
                {
                    "event": "moved",
                    "match": self.id,
                    "player": player,
                    "move": written,
                    "to_move": to_move,
                    **self._position(),
                },
                caller=caller,
            )
            caller.result = {"match": self.id, "move": written, "to_move": to_move}
            if outcome is None:
                return caller.answer()
            return self._end(outcome, caller).addCallback(lambda _: caller.answer())

        def lost(failure: Failure) -> str:
            self._not_stored(failure, "a move of")
            self.state = previous
            self.moves.pop()
            self._start_turn(elapsed)
            raise ServiceError("unavailable", "the move could not be stored; try again")

        return d.addCallbacks(stored, lost)

    def remote_forfeit(self, player: str) -> defer.Deferred[Event]:
        return self._one_at_a_time(lambda: self._forfeit(player))

    def _forfeit(self, player: str) -> defer.Deferred[Event]:
        seat = self._seat_of(player)
        if self.outcome is not None:
            raise ServiceError("game-over", f"match {self.id} is over")
        d = self._end(_others_win(seat, len(self.players), "forfeit"))
        return d.addCallback(
            lambda _: {"match": self.id, "winner": self._winner_name()}
        )


class _Caller:
    """The gateway a move came from, and what to answer it."""

    __slots__ = ("broker", "events", "recipients", "result")

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.result: Event = {}
        self.events: list[Event] = []
        self.recipients: list[str] = []

    def answer(self) -> str:
        return json.dumps(
            {
                "result": self.result,
                "events": self.events,
                "recipients": self.recipients,
            }
        )


def _others_win(loser: int, seats: int, reason: str) -> Outcome:
    """The outcome when ``loser`` drops out of a game of ``seats``."""
    if seats == 2:
        return Outcome(1 - loser, reason)
    return Outcome(None, reason)


class MatchService:
    """
    Everything one game service holds: queues, live matches, listeners.

    Players are named by their canonical display name, which the gateway
    looked up when they logged in.
    """

    log = Logger()

    def __init__(
        self,
        games: dict[str, Game[Any, Any]],
        clock: IReactorTime,
        turn_timeout: float = 120.0,
        rng: random.Random | None = None,
        store: Any = None,
        name: str = "default",
    ) -> None:
        self.games = games
        self.clock = clock
        self.turn_timeout = turn_timeout
        self.rng = rng or random.SystemRandom()
        self.store = store
        self.name = name
        self.queues: dict[str, dict[str, None]] = {name: {} for name in games}
        self.matches: dict[str, Match] = {}
        #: Where each player's updates go: one reference per gateway they
        #: are logged in to, keyed by that gateway's connection.
        self.listeners: dict[str, dict[Any, Listener]] = {}
        self._heartbeat = task.LoopingCall(self._beat)
        self._heartbeat.clock = clock
        #: Matches started and ended since the last activity report.
        self.started = 0
        self.ended = 0
        self._reports = task.LoopingCall(self.report)
        self._reports.clock = clock

    # The store

    def durably(self, method: str, *args: Any) -> defer.Deferred[Any]:
        """Call the store's ``method``, if there is a store."""
        if self.store is None:
            return defer.succeed(None)
        return maybeDeferred(getattr(self.store, method), *args)

    async def restore(self) -> int:
        """
        Take up every match this service was running when it stopped.

        Each is rebuilt move by move; the player to move keeps the time
        they had used before the service stopped (measured up to its last
        heartbeat), and the downtime is not charged to them.
        """
        if self.store is None:
            return 0
        records = await self.store.live_matches(self.name)
        last_beat = await self.store.last_beat(self.name)
        for record in records:
            game = self.games.get(record.game)
            if game is None:
                self.log.warn(
                    "match {match} is of {game}, which this service does not serve",
                    match=record.id,
                    game=record.game,
                )
                continue
            alive_until = max(last_beat or 0.0, record.turn_started_at)
            elapsed = min(alive_until - record.turn_started_at, self.turn_timeout)
            match = Match(self, record.id, game, list(record.players))
            try:
                match.resume(record.moves, elapsed)
            except MoveError as e:
                self.log.error(
                    "match {match} cannot be replayed: {why}", match=record.id, why=e
                )
                continue
            if match.outcome is not None:
                # Its last move was stored but not its end: record that now.
                await self.store.finish_match(
                    match.id,
                    match._winner_name(),
                    match.outcome.reason,
                    self.clock.seconds(),
                )
                continue
            self.matches[match.id] = match
            await self.store.set_turn_started(match.id, match._turn_started)
        if records:
            self.log.info("restored {count} live matches", count=len(self.matches))
        return len(self.matches)

    def start_heartbeat(self, interval: float = HEARTBEAT) -> None:
        if self.store is not None and not self._heartbeat.running:
            self._heartbeat.start(interval, now=True).addErrback(
                lambda f: self.log.failure("heartbeat stopped", f)
            )

    def stop_heartbeat(self) -> defer.Deferred[Any]:
        if self._heartbeat.running:
            self._heartbeat.stop()
            return self._beat()
        return defer.succeed(None)

    def start_reports(self, interval: float = REPORT_INTERVAL) -> None:
        """Log a line of activity every ``interval`` seconds, when there is any."""
        if not self._reports.running:
            self._reports.start(interval, now=False)

    def stop_reports(self) -> None:
        if self._reports.running:
            self._reports.stop()
            self.report()

    def report(self) -> None:
        """
        Log how many matches started and ended since the last report.

        One line a minute rather than one per match: every match is in the
        store, and a busy service starts thousands.
        """
        if self.started or self.ended:
            self.log.info(
                "{started} matches started and {ended} ended;"
                " {live} live, {waiting} waiting for an opponent",
                started=self.started,
                ended=self.ended,
                live=len(self.matches),
                waiting=sum(len(queue) for queue in self.queues.values()),
            )
        self.started = self.ended = 0

    def _beat(self) -> defer.Deferred[Any]:
        d = self.durably("beat", self.name, self.clock.seconds())
        return d.addErrback(lambda f: self.log.failure("could not note a heartbeat", f))

    def history(self, player: str, limit: int) -> defer.Deferred[list[Event]]:
        """``player``'s finished matches, newest first."""
        if self.store is None:
            return defer.succeed([])
        d: defer.Deferred[list[Any]] = self.store.player_matches(player, limit)
        d.addCallback(lambda records: [r.to_json() for r in records])
        return d.addErrback(self._store_down, "history")

    def record(self, match_id: str) -> defer.Deferred[Event | None]:
        """A match as stored, moves and all, or ``None``."""
        if self.store is None:
            return defer.succeed(None)
        d: defer.Deferred[Any] = self.store.match(match_id)
        d.addCallback(lambda r: None if r is None else r.to_json())
        return d.addErrback(self._store_down, "a match record")

    def _store_down(self, failure: Failure, what: str) -> Any:
        self.log.failure("could not read {what} from the store", failure, what=what)
        raise ServiceError("unavailable", "the store is unreachable; try again shortly")

    def game_list(self) -> list[Event]:
        return [
            {
                "name": game.name,
                "title": game.title,
                "description": game.description,
                "moves": game.move_syntax,
                "players": game.players,
            }
            for game in self.games.values()
        ]

    # Listeners

    def attach(self, player: str, ref: Any, broker: Any) -> list[tuple[Event, Match]]:
        """Send ``player``'s updates to ``ref`` too; return their live matches."""
        self.listeners.setdefault(player, {})[broker] = Listener(ref, broker)
        return [(m.snapshot(), m) for m in self.live_matches(player)]

    def detach(self, player: str, broker: Any = None) -> None:
        """
        Stop pushing to ``player`` through ``broker`` (or anywhere).

        Once no gateway is left to tell them, they leave every queue.
        """
        targets = self.listeners.get(player, {})
        if broker is None:
            targets.clear()
        else:
            targets.pop(broker, None)
        if not targets:
            self.listeners.pop(player, None)
            self.cancel(player)

    def broker_lost(self, broker: Any) -> None:
        """A gateway went away: forget its players' listeners and seeks."""
        for player, targets in list(self.listeners.items()):
            if broker in targets:
                self.detach(player, broker)

    def push(self, player: str, event: Event, match: Match | None = None) -> None:
        self.push_many([player], event, match)

    def push_many(
        self,
        players: list[str],
        event: Event,
        match: Match | None = None,
        skip: Any = None,
    ) -> list[str]:
        """
        Tell ``players`` of ``event``, once per gateway.

        Players on the same gateway share one message: it goes to one of
        their references and names the others, so an update both players
        of a match need crosses the link once.  Nothing is sent through
        the broker ``skip``: the names it would have reached are returned,
        for the caller to deliver with its answer to that gateway.
        """
        by_gateway: dict[Any, tuple[Listener, list[str]]] = {}
        for player in players:
            for broker, listener in self.listeners.get(player, {}).items():
                by_gateway.setdefault(broker, (listener, []))[1].append(player)
        skipped = by_gateway.pop(skip, (None, []))[1]
        if not by_gateway:
            return skipped
        # One JSON string over PB: jelly and banana take a nested dict apart
        # item by item in Python, a string in one slice.  No answer is
        # asked for: a gateway that is gone re-attaches its players.
        encoded = json.dumps(event)
        for listener, names in by_gateway.values():
            d = maybeDeferred(
                listener.ref.callRemote,
                "event",
                encoded,
                match,
                names,
                pbanswer=False,
            )
            d.addErrback(_ignore_push_failure, ", ".join(names))
        return skipped

    # Matchmaking

    def seek(self, player: str, game_name: str) -> Event | defer.Deferred[Event]:
        """
        Put ``player`` in ``game_name``'s queue, or match them at once.

        Seeking again while waiting changes nothing.
        """
        game = self.games.get(game_name)
        if game is None:
            raise ServiceError("unknown-game", f"this service has no {game_name}")
        queue = self.queues[game_name]
        if player in queue:
            return {"status": "waiting", "game": game_name}

        waiting = [name for name in queue if name != player]
        if len(waiting) + 1 < game.players:
            queue[player] = None
            return {"status": "waiting", "game": game_name}

        seated = [*waiting[: game.players - 1], player]
        for name in seated:
            queue.pop(name, None)
        self.rng.shuffle(seated)
        return defer.Deferred.fromCoroutine(self._create(game, seated))

    async def _create(self, game: Game[Any, Any], seated: list[str]) -> Event:
        for _ in range(10):
            match_id = self._new_id()
            match = Match(self, match_id, game, seated)
            self.matches[match_id] = match
            now = self.clock.seconds()
            try:
                fresh = await self.durably(
                    "create_match", self.name, match_id, game.name, seated, now
                )
            except Exception:
                del self.matches[match.id]
                self.log.failure("could not store a new match")
                raise ServiceError("unavailable", "the match could not be stored")
            if fresh is False:
                del self.matches[match.id]
                continue
            match.start()
            return {"status": "matched", "game": game.name, "match": match.id}
        raise ServiceError("internal", "no free match id was found")

    def cancel(self, player: str, game: str | None = None) -> list[str]:
        """Take ``player`` out of ``game``'s queue, or every queue.

        Return the games they were waiting for."""
        left = []
        for game_name, queue in self.queues.items():
            if game in (None, game_name) and player in queue:
                del queue[player]
                left.append(game_name)
        return left

    def waiting_for(self, player: str) -> list[str]:
        return [name for name, queue in self.queues.items() if player in queue]

    def live_matches(self, player: str) -> list[Match]:
        return [m for m in self.matches.values() if player in m.players]

    def finished(self, match: Match) -> None:
        self.matches.pop(match.id, None)

    def _new_id(self) -> str:
        while True:
            match_id = "".join(self.rng.choice(_ID_ALPHABET) for _ in range(6))
            if match_id not in self.matches:
                return match_id
