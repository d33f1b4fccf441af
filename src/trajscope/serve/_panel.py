"""The one contract every part of the viewer's page keeps.

A panel builds its GUI (and scene nodes) when it is made, and the viewer calls it at five
moments, in the order of :data:`trajscope.serve.PANELS`:

- :meth:`Panel.on_run`: a run was opened (its model is ``viewer.model``);
- :meth:`Panel.on_capture`: a capture (or live chunk) was loaded: ``shown`` holds the shown
  environments' arrays;
- :meth:`Panel.on_step`: step ``t`` of ``shown`` is shown (scrubbing, playback);
- :meth:`Panel.on_poll`: the viewer looked for news (``viewer.new_captures`` lists the
  captures written since the last look); about once a second;
- :meth:`Panel.close`: the viewer stops.

Every hook runs under the viewer's lock, and an exception in one is shown on the page
without stopping the viewer. A panel reaches the rest of the viewer through the public
attributes and methods of the :class:`~trajscope.serve.Viewer` handed to :meth:`create`
(``viewer.run``, ``viewer.shown``, ``viewer.t``, ``viewer.act``, ``viewer.show_step``,
...). A new panel is one file with a :class:`Panel` subclass and one line in ``PANELS``
(docs/architecture.md shows one); its ``tab`` says where on the page it stands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

    from .. import store
    from ._shown import Shown


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

    def on_capture(self, shown: Shown) -> None:
        """A capture was loaded."""

    def on_step(self, shown: Shown, t: int) -> None:
        """Step ``t`` is shown."""

    def on_poll(self) -> None:
        """The viewer looked for news."""

    def close(self) -> None:
        """The viewer stops."""
