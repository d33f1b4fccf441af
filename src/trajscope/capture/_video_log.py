"""A visual log during training: every K-th evaluation capture rendered to an MP4 stored in
the run (``videos/<capture id>.mp4``), off the training loop.

The recorder hands each K-th checkpoint's step to a thread of its own, which waits for the
writer to commit that capture, renders its first environments tiled (MuJoCo's offscreen
renderer, :func:`trajscope.export.video`), writes the file into the run and calls
``on_video(url, step)``: the place to hand it to TensorBoard or W&B. A request that
arrives while one is rendering replaces any waiting one (the latest wins; the skipped are
counted). Failures (no offscreen OpenGL, no encoder, a write error) become a warning and a
count, never an exception in training; after a failure to render at all, the log stops.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import store


class VideoLog:
    def __init__(
        self,
        writer: store.RunWriter,
        *,
        every: int,
        envs: int,
        width: int = 320,
        height: int = 240,
        on_video: Callable[[str, int], None] | None = None,
        warn: Callable[[str, str], None],
    ) -> None:
        self.writer = writer
        self.every = every
        self.envs = envs
        self.size = (width, height)
        self.on_video = on_video
        self._warn = warn
        self.written: list[str] = []
        self.failures = 0
        self.skipped = 0
        self.last_failure: str | None = None
        self._seen = 0
        self._pending: int | None = None
        self._dead = False
        self._cv = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="trajscope-video-log", daemon=True)
        self._thread.start()

    def captured(self, step: int) -> None:
        """An evaluation capture of ``step`` was queued; every ``every``-th is rendered."""
        self._seen += 1
        if self._dead or (self._seen - 1) % self.every:
            return
        with self._cv:
            if self._pending is not None:
                self.skipped += 1
            self._pending = int(step)
            self._cv.notify()

    def _loop(self) -> None:
        _lowest_priority()
        while True:
            with self._cv:
                while self._pending is None and not self._closing:
                    self._cv.wait()
                if self._pending is None:
                    return
                step, self._pending = self._pending, None
                self._busy = True
            try:
                self._render(step)
            except Exception as e:  # noqa: BLE001 - never into training
                self.failures += 1
                self.last_failure = f"{type(e).__name__}: {e}"
                self._warn("video", f"trajscope: the training video of step {step} was not made: {self.last_failure}")
                from ..export import ExportError

                if isinstance(e, (ExportError, ImportError)):
                    self._dead = True  # no GL or no encoder: it will not work at the next one either
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _render(self, step: int) -> None:
        from .. import export

        self.writer.flush(timeout=600)  # the capture is committed before it is read
        run = store.open_run(self.writer.url)
        caps = [c for c in run.captures if c.kind == "eval" and c.step == step]
        if not caps:
            raise RuntimeError(f"no evaluation capture of step {step} in the run")
        cap = caps[-1]
        envs = list(range(min(self.envs, cap.num_envs)))
        fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix="trajscope-video-")
        os.close(fd)
        try:
            export.video(run, cap, out=tmp, envs=envs, width=self.size[0], height=self.size[1])
            with open(tmp, "rb") as f:
                data = f.read()
        finally:
            os.unlink(tmp)
        url = self.writer.write_file(f"{store.VIDEOS_DIR}/{cap.id}.mp4", data)
        self.written.append(url)
        if self.on_video is not None:
            self.on_video(url, step)

    def close(self, timeout: float | None = 600) -> None:
        """Render what is pending, then stop."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(timeout)

    def wait(self, timeout: float = 600) -> bool:
        """Until nothing is pending or rendering (for tests and scripts)."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending is None and not self._busy, timeout)


def _lowest_priority() -> None:
    """This thread, and the renderer's threads it starts (Mesa's software rasteriser starts
    its own; Linux threads inherit their creator's niceness), at the lowest CPU priority: on
    a CPU machine rendering then takes only what training leaves."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: render at normal priority
        pass


def video_to_wandb(key: str = "trajscope/rollout") -> Callable[[str, int], None]:
    """An ``on_video`` hand-off to Weights & Biases: logs each training video as a
    ``wandb.Video`` to the active run (``wandb.init`` first), at the capture's env step."""

    def log(url: str, step: int) -> None:
        import wandb

        if wandb.run is None:
            raise RuntimeError("no active W&B run: call wandb.init() before training")
        wandb.log({key: wandb.Video(url, format="mp4")}, step=int(step))

    return log


def video_to_tensorboard(writer: Any, tag: str = "trajscope/rollout", fps: float = 25.0) -> Callable[[str, int], None]:
    """An ``on_video`` hand-off to TensorBoard through a ``tensorboardX.SummaryWriter``: each
    training video as an animated GIF in the Images tab (what ``add_video`` writes), without
    moviepy. The frames are read back from the stored MP4 (imageio-ffmpeg)."""

    def log(url: str, step: int) -> None:
        import io

        import imageio.v2 as imageio
        from tensorboardX.proto.summary_pb2 import Summary

        reader = imageio.get_reader(url)
        frames: list[Any] = [np.asarray(reader.get_data(i)) for i in range(reader.count_frames())]
        reader.close()
        buf = io.BytesIO()
        imageio.mimsave(buf, frames, format="GIF", duration=1000.0 / fps, loop=0)
        h, w = frames[0].shape[:2]
        image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=buf.getvalue())
        writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), int(step))
        writer.flush()

    return log
