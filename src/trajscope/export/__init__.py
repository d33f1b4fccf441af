"""Results that leave the viewer: video of captured rollouts (``trajscope video``) and one
HTML file that replays a capture in 3D with no server (``trajscope html``).

    from trajscope.export import video
    video("trajscope_runs/my-run", -1, out="latest.mp4", envs="grid")
    frames = video(run, 3, envs=[0, 1])          # (N, H, W, 3) uint8, for mediapy.show_video

Needs an offscreen OpenGL for MuJoCo's renderer (``MUJOCO_GL=egl`` or ``osmesa``) and the
``video`` extra (imageio, imageio-ffmpeg, pillow). No JAX.
"""

from ._html import html
from ._video import ExportError, frames, tile_size, video

__all__ = ["ExportError", "frames", "html", "tile_size", "video"]
