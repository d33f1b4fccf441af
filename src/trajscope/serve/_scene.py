"""The scene panel: the controls of the 3D scene. Which environments are shown (layout,
selection, count: fields of the view), the camera's follow and reset, contacts and geom
groups; the stage (:class:`trajscope.scene.Stage`, the viewer's) draws them."""

from __future__ import annotations

from typing import Any

from . import _shown
from ._panel import Panel


class ScenePanel(Panel):
    """The scene's controls: what the stage shows and how the camera moves."""

    tab = "Scene"

    @classmethod
    def create(cls, viewer: Any) -> ScenePanel:
        return cls(viewer)

    def __init__(self, viewer: Any) -> None:
        self.server = viewer.server
        self.viewer = viewer
        self._setting = False
        gui = self.server.gui
        with gui.add_folder("Environments"):
            self.layout = gui.add_dropdown(
                "layout",
                _shown.LAYOUTS,
                initial_value=viewer.view.layout,
                hint="one: the selected env alone; grid: envs side by side; overlay: envs on top of each other",
            )
            self.env = gui.add_slider(
                "selected env", 0, 1, 1, 0, hint="The env whose plots, values and pixels are shown"
            )
            self.count = gui.add_slider(
                "envs shown",
                1,
                1,
                1,
                1,
                disabled=True,
                hint=f"How many envs grid and overlay draw (default: all, up to {_shown.MAX_SHOWN})",
            )
            self.detail = gui.add_markdown("", visible=False)
            """What is drawn in full, when not every shown environment is."""
            self.follow = gui.add_checkbox("camera follows env", False, hint="Keep the selected env in view")
            self.reset_view = gui.add_button(
                "reset view", hint="Point every browser's camera back at the shown environments"
            )
            self.contacts = gui.add_checkbox(
                "contacts",
                False,
                hint="Contact points of the shown envs: as simulated, with their normals, where the capture "
                "stored them (contacts=k), else recomputed by MuJoCo from stored positions, with force arrows",
            )
        with gui.add_folder("Rendering", expand_by_default=False):
            self.wireframe = gui.add_checkbox("wireframe", False, hint="Geoms as their triangles' edges")
            self.transparent = gui.add_checkbox("transparent", False, hint="Bodies see-through (the ground stays)")
            hints = {
                "sites": "The model's sites, in their own colours",
                "frames": "Each body's frame: x red, y green, z blue",
                "com": "Each body's centre of mass",
                "cameras": "The model's cameras and their view pyramids",
                "lights": "The model's lights, pointing where they shine",
            }
            labels = {"sites": "sites", "frames": "body frames", "com": "centres of mass", "cameras": "cameras",
                      "lights": "lights"}  # fmt: skip
            self.decorations = {k: gui.add_checkbox(labels[k], False, hint=hints[k]) for k in hints}
            """MuJoCo viewer's decorations, each a toggle (for the environments drawn in full)."""
            self.look = gui.add_dropdown(
                "look through", ["(free camera)"], hint="See the selected env through one of the model's cameras"
            )
        with gui.add_folder("Geom groups", expand_by_default=False):
            self.groups = [gui.add_checkbox(f"group {i}", i < 3) for i in range(6)]
        for cb in self.decorations.values():
            cb.on_update(lambda _: viewer.act(self.apply_decorations))
        self.look.on_update(lambda _: viewer.act(self.look_through))
        for cb in (self.wireframe, self.transparent):
            cb.on_update(
                lambda _: viewer.act(
                    lambda: viewer.stage.set_style(wireframe=self.wireframe.value, transparent=self.transparent.value)
                )
            )
        for cb in self.groups:
            cb.on_update(lambda _: viewer.act(self.apply_groups))
        self.reset_view.on_click(lambda _: viewer.act(viewer.stage.reset_camera))
        self.contacts.on_update(lambda _: viewer.act(self.draw_contacts))
        self.layout.on_update(lambda _: self._changed(layout=self.layout.value))
        self.env.on_update(lambda _: self._changed(env=int(self.env.value)))
        self.count.on_update(lambda _: self._changed(count=int(self.count.value)))

    def _changed(self, **fields: Any) -> None:
        """The user changed what is shown: into the view, and load it again."""
        if self._setting:
            return
        viewer = self.viewer

        def change() -> None:
            for k, v in fields.items():
                setattr(viewer.view, k, v)
            viewer.reload()

        viewer.act(change)

    # ------------------------------------------------------------ hooks

    def on_capture(self, frames: _shown.Shown) -> None:
        """The controls say what the view shows, with ranges for this capture (grid and
        overlay show all of its environments, up to ``MAX_SHOWN``, until the user picks)."""
        view = self.viewer.view
        E = frames.capture.info.num_envs
        self._setting = True
        try:
            self.layout.value = view.layout
            self.count.disabled = view.layout == "one"
            self.env.max = max(E - 1, 1)
            self.env.disabled = E == 1
            self.env.value = view.selected(E)
            self.count.max = max(min(E, _shown.MAX_DRAWN), 2)
            capped = E > _shown.MAX_DRAWN
            self.count.label = f"envs shown (at most {_shown.MAX_DRAWN} of {E})" if capped else "envs shown"
            self.count.value = min(view.count if view.count is not None else _shown.MAX_SHOWN, E, _shown.MAX_DRAWN)
        finally:
            self._setting = False
        full, coarse = self.viewer.stage.drawn_in_full()
        self.detail.visible = coarse > 0
        if coarse:
            self.detail.content = (
                f"Drawn in full: env {frames.selected} and its {full - 1} nearest; "
                f"the other {coarse} coarse (fewer triangles, untextured). Select an env to see it in full."
            )

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        view, stage = self.viewer.view, self.viewer.stage
        posed = not view.stepped_in_browser
        if self.contacts.value:
            self.draw_contacts(posed=posed)
            posed = True
        if self.look.value[:1].isdigit():
            self.look_through()
        elif self.follow.value:
            if not posed:  # a step a tab settled on: pose the environments here to find where
                assert stage.envs is not None
                stage.envs.poses(*frames.state(t))
            stage.follow(frames.selected_slot)

    def on_run(self, run: Any) -> None:
        model = self.viewer.view.model
        names = []
        for i in range(model.ncam if model is not None else 0):
            import mujoco

            names.append(f"{i}: {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) or 'camera'}")
        self._setting = True
        try:
            self.look.options = ["(free camera)", *names]
            self.look.value = "(free camera)"
        finally:
            self._setting = False

    def apply_decorations(self) -> None:
        """The decorations switched on, drawn; the tabs are sent the capture's poses again."""
        viewer = self.viewer
        if viewer.stage.set_decorations({k for k, cb in self.decorations.items() if cb.value}):
            viewer.reload()

    def look_through(self) -> None:
        """The browsers' cameras at the chosen camera of the selected env (at the shown step)."""
        viewer, value = self.viewer, self.look.value
        frames = viewer.view.shown
        if self._setting or frames is None or not value[:1].isdigit():
            return
        stage = viewer.stage
        assert stage.envs is not None
        stage.envs.poses(*frames.state(viewer.view.t))
        stage.look_through(int(value.split(":")[0]), frames.selected_slot)

    def apply_groups(self) -> None:
        self.viewer.stage.show_groups({i for i, cb in enumerate(self.groups) if cb.value})

    def draw_contacts(self, *, posed: bool = False) -> None:
        """The shown environments' contacts at the shown step (or none, when switched off):
        as the capture stored them, else recomputed by MuJoCo from the states."""
        view, stage = self.viewer.view, self.viewer.stage
        frames = view.shown
        if stage.envs is None or frames is None:
            return
        if not self.contacts.value:
            stage.envs.draw_contacts(None)
            return
        if not posed:
            stage.envs.poses(*frames.state(view.t))
        captured = frames.contacts.at(view.t) if frames.contacts is not None else None
        stage.envs.draw_contacts(stage.offsets(), captured)
