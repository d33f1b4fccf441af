"""Replay that plays in each browser tab: the player (``player.js``) and its messages.

viser has no extension API, so this module is the one place that reaches into viser's
private parts (``viser._messages.Message``, ``RunJavascriptMessage``, the servers'
``_websock_server`` and clients' ``_websock_connection``; viser 1.1). It installs the
player in every page, sends each tab the open capture once (a :class:`Recording`: its
header, then its pose blocks as :mod:`trajscope.scene._recording` encodes them, first
block first), sends commands (seek, play, pause) to every tab, and passes what the tabs
report back: the step a tab settled on, and the arrow keys pressed on the page.

Each tab gets its blocks through its own websocket queue: a tab that stops reading holds
only its own queue; the others play on.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
from viser import _messages


class _Out(_messages.Message, include_in_scene_serialization=False):
    def redundancy_key(self) -> str:
        return str(uuid.uuid4())  # every one is sent: none replaces another


@dataclasses.dataclass
class TrajscopeRecordingMessage(_Out):
    """server -> tab: a capture to play (its poses follow in blocks)."""

    id: int
    num_steps: int
    dt_s: float
    nodes: list[str]
    num_envs: int
    offsets: bytes
    block_steps: int
    step: int
    playing: bool
    label: str
    follow: bool
    poses: int
    """The encoding its blocks belong to: a tab that has that one's blocks keeps them."""
    node_items: list[bytes]
    """Per node, instance by instance, ``int32``: the index of the geom (or decoration item) in a block."""
    node_slots: list[bytes]
    """Per node, instance by instance, ``int32``: the environment (slot)."""


@dataclasses.dataclass
class TrajscopeBlockMessage(_Out):
    """server -> tab: one block of a recording's poses (``id``: of its encoding, ``poses``)."""

    id: int
    index: int
    data: bytes


@dataclasses.dataclass
class TrajscopeControlMessage(_Out):
    """server -> tab: ``seek`` (to ``step``), ``play``, ``pause``, ``speed``/``loop`` (``value``)."""

    action: str
    step: int = 0
    value: float = 0.0


@dataclasses.dataclass
class TrajscopeReadyMessage(_Out):
    """tab -> server: the player is installed and can take a recording; the page's size in
    CSS pixels (sent again when it changes)."""

    page_width: int = 0
    page_height: int = 0


@dataclasses.dataclass
class TrajscopeStepMessage(_Out):
    """tab -> server: the step the tab shows, whether it plays, whether it ran off the end."""

    id: int
    step: int
    playing: bool
    ended: bool


@dataclasses.dataclass
class TrajscopeKeyMessage(_Out):
    """tab -> server: an arrow key (``left``, ``right``, ``up``, ``down``)."""

    key: str


_messages.Message._subclass_from_type_string.cache_clear()  # viser caches the message types it knows


@dataclasses.dataclass
class Recording:
    """One capture as the tabs play it: the nodes posed (one batched mesh per drawn geom),
    the environments' offsets, and the blocks as they are encoded."""

    id: int
    num_steps: int
    dt_s: float
    nodes: list[str]
    offsets: np.ndarray
    block_steps: int
    label: str = ""
    follow: bool = False
    """At its end the tab stops and says so (a live chunk: the next one follows)."""
    blocks: list[bytes | None] = dataclasses.field(default_factory=list)
    node_items: list[np.ndarray] | None = None
    """Per node, instance by instance, the index of its geom or item in a block (default:
    node ``i`` poses geom ``i`` of every environment)."""
    node_slots: list[np.ndarray] | None = None
    """Per node, instance by instance, the environment (slot) (default: all, in order)."""
    poses_key: tuple[Any, ...] = ()
    """What its poses are of (capture, environments, geoms): equal keys share blocks."""
    poses: int = 0
    """The encoding its blocks belong to (default its id); shared with the recording whose
    blocks it reuses."""

    def __post_init__(self) -> None:
        if not self.blocks:
            self.blocks = [None] * -(-self.num_steps // self.block_steps)
        if not self.poses:
            self.poses = self.id

    @property
    def num_bytes(self) -> int:
        """The bytes of its blocks so far (what each tab receives, headers aside)."""
        return sum(len(b) for b in self.blocks if b is not None)

    @property
    def complete(self) -> bool:
        return all(b is not None for b in self.blocks)


class BrowserReplay:
    """The player in every tab of ``server``; ``on_step(client_id, id, step, playing,
    ended)`` and ``on_key(client_id, key)`` are called from viser's threads."""

    def __init__(
        self,
        server: Any,
        *,
        on_step: Callable[[int, int, int, bool, bool], None],
        on_key: Callable[[int, str], None],
    ) -> None:
        self.server = server
        self._on_step, self._on_key = on_step, on_key
        self._lock = threading.Lock()
        self._ready: set[int] = set()
        self._pages: dict[int, tuple[int, int]] = {}
        self._sent: dict[int, tuple[int, set[int]]] = {}
        """Per tab: the encoding whose blocks it was sent, and which of them."""
        self.current: Recording | None = None
        self._next_id = 1
        self.sent_bytes = 0
        """Bytes of pose blocks queued for tabs, all of them together."""
        colours = resources.files("trajscope.scene").joinpath("colours.js").read_text()
        server._websock_server.queue_message(_messages.RunJavascriptMessage(source=colours))  # the player uses it
        source = resources.files("trajscope.serve").joinpath("player.js").read_text()
        server._websock_server.queue_message(_messages.RunJavascriptMessage(source=source))
        ws = server._websock_server
        ws.register_handler(TrajscopeReadyMessage, self._ready_handler)
        ws.register_handler(TrajscopeStepMessage, self._step_handler)
        ws.register_handler(TrajscopeKeyMessage, self._key_handler)
        self._waiting: set[int] = set()
        server.on_client_connect(self._connected)
        server.on_client_disconnect(lambda c: self._forget(c.client_id))

    def new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    @property
    def tabs(self) -> int:
        """Tabs whose player is installed."""
        with self._lock:
            return len(self._ready)

    # ------------------------------------------------------------ to the tabs

    def _send(self, client_id: int, message: Any) -> None:
        client = self.server.get_clients().get(client_id)
        if client is not None:
            client._websock_connection.queue_message(message)

    def _header(self, rec: Recording, *, step: int, playing: bool) -> TrajscopeRecordingMessage:
        n = len(rec.offsets)
        items = rec.node_items if rec.node_items is not None else [np.full(n, i) for i in range(len(rec.nodes))]
        slots = rec.node_slots if rec.node_slots is not None else [np.arange(n)] * len(rec.nodes)
        return TrajscopeRecordingMessage(
            id=rec.id,
            num_steps=rec.num_steps,
            dt_s=float(rec.dt_s),
            nodes=list(rec.nodes),
            num_envs=len(rec.offsets),
            offsets=np.ascontiguousarray(rec.offsets, np.float32).tobytes(),
            block_steps=rec.block_steps,
            step=int(step),
            playing=bool(playing),
            label=rec.label,
            follow=rec.follow,
            poses=rec.poses,
            node_items=[np.ascontiguousarray(i, np.int32).tobytes() for i in items],
            node_slots=[np.ascontiguousarray(s, np.int32).tobytes() for s in slots],
        )

    def publish(self, rec: Recording, *, step: int = 0, playing: bool = False) -> None:
        """Play ``rec`` in every tab from ``step`` (its blocks so far, the rest as they come)."""
        with self._lock:
            self.current = rec
            tabs = list(self._ready)
        for cid in tabs:
            self._send_all(cid, rec, step=step, playing=playing)

    def _send_all(self, cid: int, rec: Recording, *, step: int, playing: bool) -> None:
        self._send(cid, self._header(rec, step=step, playing=playing))
        first = min(max(step, 0) // rec.block_steps, len(rec.blocks) - 1)
        order = [first, *(i for i in range(len(rec.blocks)) if i != first)]  # the shown step's block first
        for i in order:
            self._send_block(cid, rec, i)

    def _send_block(self, cid: int, rec: Recording, index: int) -> None:
        """Block ``index`` of ``rec``'s encoding to tab ``cid``, unless it has it already."""
        data = rec.blocks[index]
        if data is None:
            return
        with self._lock:
            poses, sent = self._sent.get(cid, (0, set()))
            if poses != rec.poses:
                poses, sent = rec.poses, set()
            if index in sent:
                return
            sent.add(index)
            self._sent[cid] = (poses, sent)
            self.sent_bytes += len(data)
        self._send(cid, TrajscopeBlockMessage(id=rec.poses, index=index, data=data))

    def add_block(self, rec: Recording, index: int, data: bytes) -> None:
        """Block ``index`` of ``rec`` is encoded: to every tab, if its encoding is still shown."""
        rec.blocks[index] = data
        with self._lock:
            current = self.current
            tabs = list(self._ready) if current is not None and current.poses == rec.poses else []
        for cid in tabs:
            self._send_block(cid, rec, index)

    def command(self, action: str, *, step: int = 0, value: float = 0.0) -> None:
        """To every tab: ``seek`` to ``step``, ``play``, ``pause``, ``speed``, ``loop``."""
        with self._lock:
            tabs = list(self._ready)
        for cid in tabs:
            self._send(cid, TrajscopeControlMessage(action=action, step=int(step), value=float(value)))

    # ------------------------------------------------------------ from the tabs

    def page_size(self, client_id: int) -> tuple[int, int] | None:
        """The page of tab ``client_id`` in CSS pixels, once its player said (viser reports
        the canvas in render pixels, fewer than CSS ones when it lowers its resolution)."""
        with self._lock:
            return self._pages.get(client_id)

    def _ready_handler(self, client_id: int, message: TrajscopeReadyMessage) -> None:
        with self._lock:
            if message.page_width > 0 and message.page_height > 0:
                self._pages[client_id] = (int(message.page_width), int(message.page_height))
            if client_id in self._ready:
                return  # the page was resized: only its size is news
            self._ready.add(client_id)
            rec = self.current
        if client_id not in self.server.get_clients():
            with self._lock:  # viser lists a client once its connect handlers ran: then
                self._waiting.add(client_id)
            return
        if rec is not None:
            self._send_all(client_id, rec, step=self.start_step(), playing=False)

    def _connected(self, client: Any) -> None:
        with self._lock:
            waiting = client.client_id in self._waiting
            self._waiting.discard(client.client_id)
            rec = self.current
        if waiting and rec is not None:
            self._send_all(client.client_id, rec, step=self.start_step(), playing=False)

    start_step: Callable[[], int] = staticmethod(lambda: 0)  # type: ignore[assignment]
    """Where a tab that joins starts (set by the viewer: the step the others settled on)."""

    def _step_handler(self, client_id: int, message: TrajscopeStepMessage) -> None:
        self._on_step(client_id, int(message.id), int(message.step), bool(message.playing), bool(message.ended))

    def _key_handler(self, client_id: int, message: TrajscopeKeyMessage) -> None:
        if message.key in ("left", "right", "up", "down"):
            self._on_key(client_id, message.key)

    def _forget(self, client_id: int) -> None:
        with self._lock:
            self._ready.discard(client_id)
            self._waiting.discard(client_id)
            self._pages.pop(client_id, None)
            self._sent.pop(client_id, None)
