"""The run-directory format: its one definition in code.

Everything a reader or writer needs to know about names, shapes, groups and the version
lives here. ``docs/format.md`` describes the same things for people; a test checks that
the two do not drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

FORMAT_VERSION = "1.5"
"""``MAJOR.MINOR``. Readers accept any minor version of their major version and reject
other major versions. Minor versions only ever add optional fields."""

FORMAT_MAJOR = int(FORMAT_VERSION.split(".")[0])

RUN_FILE = "run.json"
MODEL_DIR = "model"
MODEL_MJB = "model/model.mjb.z"
"""zlib-compressed ``mj_saveModel`` bytes (builtin textures make raw MJB files large)."""
MODEL_XML = "model/model.xml"
MODEL_ASSETS_DIR = "model/assets"
CAPTURES_DIR = "captures"
MANIFEST_FILE = "capture.json"

CAPTURE_KINDS = ("eval", "live", "nan")
"""``eval``: a rollout of a checkpoint's policy; ``live``: a chunk of the live stream of the
training environments; ``nan``: the training steps up to a training environment's first
non-finite value (the NaN guard)."""

LIVE_DIR = "live"
"""Chunks of the live stream (captures of kind ``live``); only the newest few are kept."""
LIVE_STATUS = "live/status.json"
"""Written by training: what the live stream is doing, renewed every second or so."""
LIVE_CONTROL = "live/control.json"
"""Written by viewers: switch the live stream on or off and set its rate."""


VIDEOS_DIR = "videos"
"""Optional: ``<capture id>.mp4`` per rendered capture (``BraxRecorder(video_every=K)``)."""
ANALYSIS_DIR = "analysis"
"""Results of ``trajscope analyse`` (and the viewer's Analysis panel): derived from the
captures, recomputable, never needed to read them."""
ANALYSIS_FILE = "analysis/analysis.json"


def capture_id(step: int, kind: str, token: str, process_index: int | None = None) -> str:
    """A capture's folder name: ``<step, 12 digits>-<kind>-<8 hex>``, with ``p<index>-``
    before the hex when written by one process of a multi-process training."""
    proc = f"p{int(process_index)}-" if process_index is not None else ""
    return f"{int(step):012d}-{kind}-{proc}{token}"


def process_of(capture_id: str) -> int | None:
    """The process index in a capture id, or None (a single-process writer)."""
    parts = capture_id.split("-")
    if len(parts) == 4 and parts[2][:1] == "p" and parts[2][1:].isdigit():
        return int(parts[2][1:])
    return None


def is_live_chunk(name: str) -> bool:
    """Whether an entry of ``live/`` is a chunk folder (``<step>-live-<hex>``), not one of
    the stream's own files."""
    return "-live-" in name


def array_name(group: str, key: str) -> str:
    """How readers name an array: ``key`` for fixed arrays, ``group/key`` otherwise."""
    return f"{group}/{key}" if group else key


def capture_dir(kind: str) -> str:
    """The folder holding captures of this kind: ``live/`` for ``live``, else ``captures/``."""
    return LIVE_DIR if kind == "live" else CAPTURES_DIR


Layout = Literal["time_env", "env", "free"]
"""How an array's leading axes are laid out.

- ``time_env``: logical shape ``(T, E, ...)``; stored environment-major ``(E, T, ...)`` so
  that one environment is one contiguous byte range on disk.
- ``env``: one entry per environment, ``(E, ...)``, stored as is.
- ``free``: any shape, stored as is (policy parameters).
"""


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """A fixed, named array of a capture."""

    name: str
    dims: tuple[str, ...]
    """Logical shape; ``T`` steps, ``E`` environments, model sizes by MuJoCo's names."""
    dtype: str
    """numpy dtype kind stored: ``float`` (float16/32/64 kept as given), ``bool``."""
    doc: str
    required: bool = False


FIXED_ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec("qpos", ("T", "E", "nq"), "float", "Joint positions of each frame's state.", True),
    ArraySpec("qvel", ("T", "E", "nv"), "float", "Joint velocities of each frame's state."),
    ArraySpec("act", ("T", "E", "na"), "float", "Actuator activations (models with na > 0)."),
    ArraySpec("mocap_pos", ("T", "E", "nmocap", "3"), "float", "Mocap body positions, world frame."),
    ArraySpec("mocap_quat", ("T", "E", "nmocap", "4"), "float", "Mocap body orientations (w, x, y, z)."),
    ArraySpec("action", ("T", "E", "nu"), "float", "The action that led to the frame's state."),
    ArraySpec("reward", ("T", "E"), "float", "The reward for that action."),
    ArraySpec("done", ("T", "E"), "bool", "True where the frame's state ended the episode."),
    ArraySpec("value", ("T", "E"), "float", "The critic's value prediction for the frame's state."),
)
FIXED_BY_NAME = {s.name: s for s in FIXED_ARRAYS}

Group = Literal["", "metrics", "obs", "info", "model_fields", "params", "buffer"]
GROUP_LAYOUT: dict[str, Layout] = {
    "": "time_env",
    "metrics": "time_env",
    "obs": "time_env",
    "info": "time_env",
    "model_fields": "env",
    "params": "free",
    "buffer": "free",
}
GROUP_DOCS = {
    "metrics": "Every scalar metric per step, ``(T, E)``: for MuJoCo Playground each ``reward/<term>``.",
    "obs": "Observations ``(T, E, ...)``; a single array is stored under the key ``obs``.",
    "info": "Selected ``state.info`` entries ``(T, E, ...)``.",
    "model_fields": "Per-environment randomised MjModel fields ``(E, ...)``, by MjModel attribute name.",
    "params": "The checkpoint's parameters as named arrays; key is the '/'-joined pytree path.",
    "buffer": "A sample of an off-policy trainer's replay buffer ``(N, ...)``: ``step`` (env steps when "
    "inserted), ``qpos``, ``qvel``, ``obs`` or ``obs/<key>``, ``action``, ``reward``, ``priority``.",
}
BUFFER_KEYS = ("step", "qpos", "qvel", "action", "reward", "priority")
"""The ``buffer`` group's keys besides ``obs`` / ``obs/<key>``."""

IMAGE_PREFIX = "pixels/"

# Dimensions of model-sized axes checked against the run's model summary.
MODEL_DIMS = ("nq", "nv", "na", "nu", "nmocap")

_KEY_RE = re.compile("^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]{1,256}$")


def valid_key(key: str) -> bool:
    """Keys of keyed groups: 1 to 256 characters, none a control character (C0, C1),
    a line or paragraph separator, or a bidirectional-text control."""
    return bool(_KEY_RE.match(key))


def is_image(key: str, sample_shape: tuple[int, ...]) -> bool:
    """The one rule for observations that are images, from one sample's shape.

    Keys under ``pixels/`` (MuJoCo Playground's vision environments) of at least ``(H, W)``,
    or any observation of shape ``(H, W, C)`` with ``C`` in 1, 3, 4.
    """
    if key.startswith(IMAGE_PREFIX):
        return len(sample_shape) >= 2
    return len(sample_shape) == 3 and sample_shape[-1] in (1, 3, 4)


def is_image_key(key: str, shape: tuple[int, ...]) -> bool:
    """:func:`is_image` for a stored observation of logical shape ``(T, E, ...)``."""
    return len(shape) >= 2 and is_image(key, tuple(shape[2:]))


# Named value ranges tried, in order, when a float image is stored as uint8.
IMAGE_RANGES: tuple[tuple[float, float], ...] = (
    (0.0, 1.0),
    (-0.5, 0.5),
    (-1.0, 1.0),
    (0.0, 255.0),
)
