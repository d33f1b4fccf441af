"""The viewer inside a Jupyter notebook: ``trajscope.show(run)``.

The viewer runs in the kernel's process on a background thread (a :class:`Viewer`, as
``trajscope view`` starts) and the cell displays it in an IFrame. The IFrame is loaded by
the *browser*, so its address must be one the browser can reach:

* a local kernel: ``http://localhost:PORT`` (the default);
* a remote kernel reached through ``ssh -L 8888:localhost:8888 HOST`` for Jupyter: forward
  the viewer's port too (``-L PORT:localhost:PORT``; ``show`` prints the command), or
* a remote kernel behind jupyter-server-proxy (JupyterHub, most cloud notebooks):
  ``show(run, proxy=True)`` points the IFrame at ``/proxy/PORT/`` on the notebook's own
  server, and nothing else needs forwarding.

Calling ``show`` again for the same path reuses its viewer.
"""

from __future__ import annotations

import html
import os
from typing import Any

_VIEWERS: dict[str, Any] = {}


class Shown:
    """What ``show`` returns: displays as the viewer in an IFrame (``_repr_html_``)."""

    def __init__(self, viewer: Any, src: str, height: int) -> None:
        self.viewer = viewer
        self.src = src
        self.height = height

    @property
    def url(self) -> str:
        return self.viewer.url

    def _repr_html_(self) -> str:
        src = html.escape(self.src, quote=True)
        return (
            f'<iframe src="{src}" width="100%" height="{int(self.height)}" '
            'style="border: 1px solid #ddd; border-radius: 4px" allow="fullscreen"></iframe>'
        )

    def __repr__(self) -> str:
        return f"trajscope viewer at {self.url} (shown from {self.src})"

    def close(self) -> None:
        self.viewer.close()
        for k, v in list(_VIEWERS.items()):
            if v is self.viewer:
                del _VIEWERS[k]


def show(
    run: Any,
    *,
    height: int = 600,
    port: int | None = None,
    proxy: bool = False,
    allow_origins: tuple[str, ...] | list[str] = (),
    live: bool = False,
    play_env: Any = None,
) -> Shown:
    """Display the viewer of ``run`` (a :class:`trajscope.Run`, a run folder, a root of
    runs, or an fsspec URL) in the notebook.

    Args:
        height: of the IFrame, in pixels.
        port: the viewer's port on the kernel's machine (default: a free one).
        proxy: address the IFrame through jupyter-server-proxy (``/proxy/PORT/``) instead
            of ``http://localhost:PORT``: for remote kernels behind JupyterHub and the like.
            The viewer refuses websockets from pages of other origins, so name the
            notebook's origin (what the browser's address bar starts with) in
            ``allow_origins``, e.g. ``["https://hub.example.org"]``.
        allow_origins: origins besides the viewer's own whose pages may connect.
        live: switch the run's live stream on and watch it.
        play_env: the environment as trained, for "play from here" (see docs/play.md).
    """
    from .serve import Viewer, free_port

    if proxy and not allow_origins:
        raise ValueError(
            "show(..., proxy=True) needs allow_origins=[the notebook's origin], e.g. "
            "['https://hub.example.org'] (the start of your browser's address bar): the viewer "
            "refuses websockets from pages of any other origin"
        )
    path = str(getattr(run, "url", None) or os.fspath(run))
    viewer = _VIEWERS.get(path)
    if viewer is None:
        env, spec = (None, play_env) if isinstance(play_env, str) else (play_env, None)
        viewer = Viewer(
            path,
            port=port or free_port(),
            live=live,
            play_env=env,
            play_env_spec=spec,
            allow_origins=tuple(allow_origins),
        )
        _VIEWERS[path] = viewer
        if not proxy:
            print(
                f"trajscope viewer on port {viewer.port}; on a remote kernel forward it too: "
                f"ssh -L {viewer.port}:localhost:{viewer.port} HOST (or use show(..., proxy=True))"
            )
    src = f"/proxy/{viewer.port}/" if proxy else f"http://localhost:{viewer.port}"
    return Shown(viewer, src, height)
