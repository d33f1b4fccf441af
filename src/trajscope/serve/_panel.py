"""The one contract every part of the viewer's page keeps.

A panel builds its GUI (and scene nodes) when it is made, and the viewer calls it at these
moments, in the order of :data:`trajscope.serve.PANELS` (which is page order only: no hook
reads what another panel's hook at the same moment did, except through the load phase):

- :meth:`Panel.on_run`: a run was opened (``viewer.view.run``, ``viewer.view.model``);
- :meth:`Panel.on_load`: the load phase of a capture (or live chunk): the view holds its
  arrays (``view.shown``) and the stage has arranged its environments; a panel that
  contributes to what is drawn (a comparison, an image overlay) adds it to the view here,
  before any panel draws;
- :meth:`Panel.on_capture`: the capture is loaded: draw what depends on the whole capture;
- :meth:`Panel.on_step`: step ``t`` is shown (a tab settled on it, or the server moved);
- :meth:`Panel.on_end`: the tabs played the shown recording to its end (a live chunk);
- :meth:`Panel.on_poll`: the viewer looked for news (``viewer.new_captures`` lists the
  captures written since the last look); about once a second;
- :meth:`Panel.close`: the viewer stops.

Every hook runs under the viewer's lock, and an exception in one is shown on the page
without stopping the viewer. A panel reads what is shown from ``viewer.view`` (a
:class:`~trajscope.serve.View`), draws in the 3D scene through ``viewer.stage`` (a
:class:`trajscope.scene.Stage`), and changes what is shown by setting the view's fields and
calling ``viewer.reload()`` (the environments changed), ``viewer.show_step(t)``,
``viewer.redraw()`` (the same step, drawn again), ``viewer.load_capture(i)`` or
``viewer.open(capture)``; it never reaches another panel. A new panel is one file with a
:class:`Panel` subclass and one line in ``PANELS`` (docs/architecture.md shows one); its
``tab`` says where on the page it stands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

    from .. import store
    from ._shown import Shown
    from ._view import View


class Panel:
    """A part of the viewer's page; override the hooks it needs (each does nothing here)."""

    viewer: Any = None
    """The viewer the panel is part of: set by the viewer once :meth:`create` returns."""
    tab: str = "More"
    """The tab of the side panel the panel's GUI goes in (``trajscope.serve.TABS``, or a
    new tab of this name after them; ``""``: above the tabs, as the timeline is)."""

    def __init__(self, server: Any = None) -> None:
        self.server = server

    @classmethod
    def create(cls, viewer: Any) -> Self:
        """Make the panel for ``viewer`` (default: ``cls(viewer.server)``); a panel whose GUI
        calls back into the viewer wires that here. The viewer then sets :attr:`viewer`."""
        return cls(viewer.server)  # type: ignore[call-arg]

    def on_run(self, run: store.Run) -> None:
        """A run was opened."""

    def on_load(self, view: View) -> None:
        """The load phase: add to ``view`` what this panel contributes to what is drawn."""

    def on_capture(self, shown: Shown) -> None:
        """A capture was loaded."""

    def on_step(self, shown: Shown, t: int) -> None:
        """Step ``t`` is shown."""

    def on_end(self, shown: Shown) -> None:
        """The tabs played the shown recording to its end."""

    def on_poll(self) -> None:
        """The viewer looked for news."""

    def close(self) -> None:
        """The viewer stops."""
