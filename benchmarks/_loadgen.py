"""
Simulated players for the load harness: asyncio clients of the line protocol.

Each load-generator process runs one L{Worker} over its share of the
players.  The harness (``load.py``) talks to it through two queues: the
worker says ``ready`` once its players are set up, waits for a ``go``
carrying the plan (absolute ``time.monotonic`` instants, which every
process on the machine shares), sends ``progress`` every second and
``done`` with its raw measurements at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

HOST = "127.0.0.1"
PASSWORD = "bench-password"
#: What the ceiling's back end answers; the relay writes it back as it is.
CEILING_REPLY = '{"ok": true, "result": {}}'
#: A line the size of a real move, for the ceiling.
CEILING_LINE = "MOVE abcdef 5"
#: Seconds a worker waits for outstanding replies after the run ends.
DRAIN_SECONDS = 30.0

Reply = Callable[[dict[str, Any], float], None]


def _nothing() -> None:
    pass


EventHandler = Callable[["Conn", dict[str, Any], float], None]


class Conn(asyncio.Protocol):
    """One connection: JSON lines in, replies matched to commands in order."""

    def __init__(self, worker: Worker, name: str, on_event: EventHandler) -> None:
        self.worker = worker
        self.name = name
        self.on_event = on_event
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Reply] = deque()
        self.buffer = b""
        self.closing = False
        self.lost = False
        #: Per-scenario state: the live match, its seat, and so on.
        self.match: str | None = None
        self.first_seat = False
        self.partner: Conn | None = None
        self.seeking = False
        #: The board when it is our turn but the run has not started.
        self.turn: list[Any] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.record: dict[str, Any] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        for raw in lines:
            if not raw.startswith(b"{"):
                continue  # the text-mode welcome
            message = json.loads(raw)
            if "event" in message:
                self.on_event(self, message, now)
            elif self.pending:
                self.pending.popleft()(message, now)
            else:
                self.worker.error("unasked-reply")

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.closing:
            self.worker.error("disconnect")
        self.pending.clear()

    def send(self, line: str, on_reply: Reply) -> None:
        if self.lost or self.transport is None:
            return
        self.pending.append(on_reply)
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def ask(self, line: str) -> asyncio.Future[dict[str, Any]]:
        """Send ``line``; a future of its reply."""
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )

        def answered(message: dict[str, Any], now: float) -> None:
            if not future.done():
                future.set_result(message)

        self.send(line, answered)
        return future

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class Pacer:
    """Spreads calls at a steady rate; without a rate, calls at once."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = 0.0

    def run(self, call: Callable[[], None]) -> None:
        if not self.interval:
            call()
            return
        now = time.monotonic()
        self.next = max(now, self.next + self.interval)
        asyncio.get_running_loop().call_later(self.next - now, call)


class Phase:
    """One measured stretch of the run and what was seen in it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.start: float = spec["start"]
        self.end: float = spec["end"]
        self.login_rate: float = spec.get("login_rate", 0.0)
        self.moves = 0
        self.move_latencies: list[float] = []
        self.logins = 0
        self.login_latencies: list[float] = []

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "moves": self.moves,
            "move_latencies": self.move_latencies,
            "logins": self.logins,
            "login_latencies": self.login_latencies,
        }


class Worker:
    """One load-generator process's players and counters."""

    def __init__(self, config: dict[str, Any], outbox: Any, inbox: Any) -> None:
        self.config = config
        self.kind: str = config["kind"]
        self.index: int = config["worker"]
        self.port: int = config["port"]
        self.outbox = outbox
        self.inbox = inbox
        self.rng = random.Random(config.get("seed", 0) * 1000 + self.index)
        self.conns: list[Conn] = []
        self.errors: dict[str, int] = {}
        self.phases: list[Phase] = []
        self.running = False
        self.end = 0.0
        self.moves_sent = 0
        self.moves_done = 0
        self.max_moves: int = config.get("max_moves", 10**9)
        self.matches_finished = 0
        self.logins_done = 0
        self.pacer = Pacer(config.get("move_rate"))
        #: (match, ply, send time, phase) for moves sent in a phase.
        self.sends: list[tuple[str, int, float, int]] = []
        #: (match, ply, receive time) for opponents' moves received.
        self.receipts: list[tuple[str, int, float]] = []
        self.seek_records: list[dict[str, Any]] = []
        self.setup_seconds = 0.0
        self.reseek = self.kind == "matches"
        self.outstanding = 0
        self.stream_names: list[str] = config.get("stream_names", [])

    # Counting

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def phase_of(self, when: float) -> int:
        for i, phase in enumerate(self.phases):
            if phase.start <= when < phase.end:
                return i
        return -1

    def check(self, message: dict[str, Any], what: str) -> bool:
        if message.get("ok"):
            return True
        code = message.get("error", {}).get("code", "?")
        self.error(f"{what}:{code}")
        return False

    # Connections

    async def connect(self, name: str, on_event: EventHandler | None = None) -> Conn:
        loop = asyncio.get_running_loop()
        handler = on_event or self.on_event
        for attempt in range(20):
            try:
                _, conn = await loop.create_connection(
                    lambda: Conn(self, name, handler), HOST, self.port
                )
                return conn
            except OSError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    async def join(self, name: str, register: bool, login: bool) -> Conn:
        """A connection in JSON mode, registered and logged in as asked."""
        conn = await self.connect(name)
        steps = [conn.ask("JSON")]
        if register:
            steps.append(conn.ask(f"REGISTER {name} {PASSWORD}"))
        if login:
            steps.append(conn.ask(f"LOGIN {name} {PASSWORD}"))
        for step, what in zip(steps, ["json", "register", "login"], strict=False):
            self.check(await step, what)
        return conn

    async def each(
        self, items: list[Any], work: Callable[[Any], Any], concurrency: int
    ) -> list[Any]:
        gate = asyncio.Semaphore(concurrency)

        async def one(item: Any) -> Any:
            async with gate:
                return await work(item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    # Set-up, by kind

    async def setup(self) -> None:
        started = time.monotonic()
        config = self.config
        names: list[str] = config.get("names", [])
        concurrency = config.get("setup_concurrency", 25)
        register = config.get("register", True)
        login = config.get("login", True)

        if self.kind == "ceiling":
            self.conns = await self.each(names, self.connect, concurrency)
            for a, b in zip(self.conns[::2], self.conns[1::2], strict=True):
                a.partner, b.partner, a.first_seat = b, a, True
        elif self.kind in ("matches", "idle", "seeks", "logins", "register"):
            self.conns = await self.each(
                names,
                lambda name: self.join(name, register, login),
                concurrency,
            )
        if self.kind == "register":
            for conn in self.conns:
                conn.close()
            self.conns = []
        if self.kind == "matches":
            await self.each(self.conns, self.first_seek, concurrency)
        if self.stream_names and config.get("register_stream", True):
            streamers = await self.each(
                self.stream_names,
                lambda name: self.join(name, True, False),
                concurrency,
            )
            for conn in streamers:
                conn.close()
        self.setup_seconds = time.monotonic() - started

    async def first_seek(self, conn: Conn) -> None:
        """Seek, and wait until the match has started."""
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        conn.waiter = started
        conn.seeking = True
        self.check(await conn.ask("PLAY tictactoe"), "play")
        try:
            await asyncio.wait_for(started, self.config.get("setup_timeout", 300))
        except asyncio.TimeoutError:
            self.error("setup:no-match")

    # The run

    async def run(self, plan: dict[str, Any]) -> None:
        """One measured run; the connections stay open for the next."""
        self.phases = [Phase(spec) for spec in plan["phases"]]
        self.end = plan["end"]
        self.errors = {}
        self.sends, self.receipts, self.seek_records = [], [], []
        self.moves_sent = self.moves_done = self.logins_done = 0
        self.matches_finished = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        if "move_rate" in plan:
            self.pacer = Pacer(plan["move_rate"])
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, plan["go"] - time.monotonic()))
        self.running = True
        reporter = loop.create_task(self.report_progress())

        if self.kind == "matches":
            for conn in self.conns:
                self.resume(conn)
        elif self.kind == "ceiling":
            for conn in self.conns:
                if conn.first_seat:
                    self.ceiling_send(conn)
        elif self.kind == "logins":
            for conn in self.conns:
                self.login_loop(conn)
        elif self.kind == "seeks":
            for i, when in enumerate(plan.get("rounds", [])):
                loop.call_at(self.loop_time(when), self.seek_round, i)
                forfeit_at = when + plan["round_gap"] / 2
                loop.call_at(self.loop_time(forfeit_at), self.forfeit_round)
        elif self.kind == "idle" and self.config.get("pair_rate"):
            self.tasks.add(loop.create_task(self.idle_pair()))
        for i, phase in enumerate(self.phases):
            if phase.login_rate:
                self.tasks.add(loop.create_task(self.login_stream(i)))

        await asyncio.sleep(max(0.0, self.end - time.monotonic()))
        self.running = False
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and any(c.pending for c in self.conns):
            await asyncio.sleep(0.05)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=DRAIN_SECONDS)
        self.outstanding = sum(len(c.pending) for c in self.conns)
        reporter.cancel()

    def loop_time(self, monotonic: float) -> float:
        loop = asyncio.get_running_loop()
        return loop.time() + (monotonic - time.monotonic())

    async def report_progress(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.outbox.put(("progress", self.index, self.counters()))

    def counters(self) -> dict[str, Any]:
        return {
            "moves": self.moves_done,
            "errors": sum(self.errors.values()),
            "logins": self.logins_done,
            "matches": self.matches_finished,
        }

    # Matches: every player plays its own side

    def on_event(self, conn: Conn, event: dict[str, Any], now: float) -> None:
        kind = event["event"]
        if kind == "moved":
            cells = event["board"]["cells"]
            if event["player"] != conn.name:
                filled = len(cells) - cells.count(None)
                if self.running and self.phase_of(now) >= 0:
                    self.receipts.append((event["match"], filled, now))
                if event["to_move"] == conn.name:
                    self.my_turn(conn, event["match"], cells)
        elif kind == "match-started":
            conn.match = event["match"]
            conn.seeking = False
            conn.first_seat = event["players"][0] == conn.name
            conn.turn = None
            if conn.waiter is not None and not conn.waiter.done():
                conn.waiter.set_result(None)
            if self.kind == "seeks":
                self.seek_started(conn, event, now)
            elif event["to_move"] == conn.name:
                self.my_turn(conn, event["match"], event["board"]["cells"])
        elif kind == "match-ended":
            self.matches_finished += 1
            conn.match = None
            if self.running and self.reseek:
                self.seek(conn)
        elif kind in ("logged-out", "closing"):
            self.error(f"event:{kind}")

    def resume(self, conn: Conn) -> None:
        """At the start of a run, carry on where the last one stopped."""
        if conn.match is not None and conn.turn is not None:
            self.my_turn(conn, conn.match, conn.turn)
        elif conn.match is None and not conn.seeking:
            self.seek(conn)

    def my_turn(self, conn: Conn, match: str, cells: list[Any]) -> None:
        conn.turn = None
        if not self.running:
            conn.turn = cells
            return
        self.pacer.run(lambda: self.move(conn, match, cells))

    def move(self, conn: Conn, match: str, cells: list[Any]) -> None:
        if not self.running or self.moves_sent >= self.max_moves:
            conn.turn = cells  # for the next run, if there is one
            return
        free = [i for i, cell in enumerate(cells) if cell is None]
        cell = self.rng.choice(free)
        ply = len(cells) - len(free) + 1
        sent = time.monotonic()
        phase = self.phase_of(sent)
        self.moves_sent += 1
        if phase >= 0:
            self.sends.append((match, ply, sent, phase))

        conn.send(f"MOVE {match} {cell + 1}", self.timed("move", sent, phase))

    def timed(
        self, what: str, sent: float, phase: int, then: Callable[[], None] = _nothing
    ) -> Reply:
        """A reply handler that counts a move sent at ``sent`` and times it."""

        def answered(message: dict[str, Any], now: float) -> None:
            if not self.check(message, what):
                return
            self.moves_done += 1
            done_in = self.phase_of(now)
            if done_in >= 0:
                self.phases[done_in].moves += 1
            if phase >= 0:
                self.phases[phase].move_latencies.append(now - sent)
            then()

        return answered

    def seek(self, conn: Conn) -> None:
        if self.moves_sent >= self.max_moves:
            return
        conn.seeking = True
        conn.send("PLAY tictactoe", lambda m, now: self.check(m, "play") and None)

    # The ceiling: pairs take turns, one line out and one back

    def ceiling_send(self, conn: Conn) -> None:
        if not self.running or self.moves_sent >= self.max_moves:
            return
        sent = time.monotonic()
        phase = self.phase_of(sent)
        self.moves_sent += 1

        def next_turn() -> None:
            partner = conn.partner
            assert partner is not None
            self.pacer.run(lambda: self.ceiling_send(partner))

        conn.send(CEILING_LINE, self.timed("relay", sent, phase, next_turn))

    # Logins

    def record_login(self, message: dict[str, Any], sent: float, now: float) -> None:
        if not self.check(message, "login"):
            return
        self.logins_done += 1
        phase = self.phase_of(now)
        if phase >= 0:
            self.phases[phase].logins += 1
            self.phases[phase].login_latencies.append(now - sent)

    def login_loop(self, conn: Conn) -> None:
        """LOGIN, LOGOUT and again, as fast as the server answers."""
        if not self.running:
            return
        sent = time.monotonic()

        def logged_in(message: dict[str, Any], now: float) -> None:
            self.record_login(message, sent, now)
            conn.send("LOGOUT", logged_out)

        def logged_out(message: dict[str, Any], now: float) -> None:
            self.check(message, "logout")
            self.login_loop(conn)

        conn.send(f"LOGIN {conn.name} {PASSWORD}", logged_in)

    async def login_stream(self, index: int) -> None:
        """New connections logging in at a steady rate through one phase."""
        phase = self.phases[index]
        await asyncio.sleep(max(0.0, phase.start - time.monotonic()))
        interval = 1.0 / phase.login_rate
        names = self.stream_names
        tasks = self.tasks
        count = 0
        while time.monotonic() < phase.end and self.running:
            name = names[count % len(names)]
            task = asyncio.get_running_loop().create_task(self.login_once(name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            count += 1
            await asyncio.sleep(
                max(0.0, phase.start + count * interval - time.monotonic())
            )

    async def login_once(self, name: str) -> None:
        conn = await self.connect(name, lambda c, e, t: None)
        self.check(await conn.ask("JSON"), "json")
        sent = time.monotonic()
        future = conn.ask(f"LOGIN {name} {PASSWORD}")
        try:
            message = await asyncio.wait_for(future, 30)
        except asyncio.TimeoutError:
            self.error("login:timeout")
        else:
            self.record_login(message, sent, time.monotonic())
        conn.close()

    # An idle crowd with one pair playing slowly among it

    async def idle_pair(self) -> None:
        a = await self.join(f"pair{self.index}a", True, True)
        b = await self.join(f"pair{self.index}b", True, True)
        self.conns += [a, b]
        self.pacer = Pacer(self.config["pair_rate"])
        self.reseek = True
        self.seek(a)
        self.seek(b)

    # Seeks: everyone asks at once, then the first seat forfeits

    def seek_round(self, number: int) -> None:
        for conn in self.conns:
            sent = time.monotonic()
            record: dict[str, Any] = {"round": number, "player": conn.name}
            record["sent"] = sent
            self.seek_records.append(record)
            conn.record = record

            def answered(message: dict[str, Any], now: float, r: Any = record) -> None:
                if self.check(message, "play"):
                    result = message["result"]
                    r["status"] = result["status"]
                    r["reply_match"] = result.get("match")
                    r["replied"] = now

            conn.send("PLAY tictactoe", answered)

    def seek_started(self, conn: Conn, event: dict[str, Any], now: float) -> None:
        record = conn.record
        if record is None or "match" in record:
            self.error("seek:unexpected-start")
            return
        record["match"] = event["match"]
        record["told"] = now

    def forfeit_round(self) -> None:
        for conn in self.conns:
            if conn.match is not None and conn.first_seat:
                conn.send(
                    f"FORFEIT {conn.match}",
                    lambda m, now: self.check(m, "forfeit") and None,
                )

    # Results

    def results(self) -> dict[str, Any]:
        return {
            "worker": self.index,
            "setup_seconds": self.setup_seconds,
            "connections": len(self.conns),
            "errors": self.errors,
            "outstanding": self.outstanding,
            "moves_sent": self.moves_sent,
            "moves_done": self.moves_done,
            "capped": self.moves_sent >= self.max_moves,
            "matches_finished": self.matches_finished,
            "phases": [phase.to_json() for phase in self.phases],
            "sends": self.sends,
            "receipts": self.receipts,
            "seek_records": self.seek_records,
        }


async def _main(config: dict[str, Any], outbox: Any, inbox: Any) -> None:
    worker = Worker(config, outbox, inbox)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(worker.setup(), config.get("setup_timeout", 300))
    except Exception as e:
        outbox.put(("failed", worker.index, f"set-up failed: {e!r}"))
        return
    ready = {
        **worker.counters(),
        "errors": worker.errors,
        "seconds": worker.setup_seconds,
    }
    outbox.put(("ready", worker.index, ready))

    while True:
        message = await loop.run_in_executor(None, inbox.get)
        if message[0] != "go":
            break
        await worker.run(message[1])
        outbox.put(("done", worker.index, worker.results()))
    for conn in worker.conns:
        conn.close()
    await asyncio.sleep(0.1)


def worker_main(config: dict[str, Any], outbox: Any, inbox: Any) -> None:
    """Entry point of a load-generator process."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        asyncio.run(_main(config, outbox, inbox))
    except Exception as e:  # report rather than die silently
        outbox.put(("failed", config["worker"], repr(e)))
