"""The rooms' contracts, used as a newcomer would: a new viewer panel is one class and one
line in the panel list; a new export format draws through ``sim`` and ``scene`` alone.
docs/architecture.md shows both examples; these tests run them."""

from __future__ import annotations

import numpy as np

import trajscope
from servers import free_port
from trajscope.demo import write_demo_run
from trajscope.serve import PANELS, ComparePanel, Panel, PlotsPanel, ReplayPanel, Viewer


class StepRewardPanel(Panel):
    """A toy panel: the selected environment's reward at the shown step, and how many
    captures the run has gained while the page was open."""

    tab = "Plots"

    def __init__(self, server):
        with server.gui.add_folder("Step reward"):
            self.text = server.gui.add_markdown("no capture")
        self.gained = 0
        self.closed = False

    def on_run(self, run):
        self.gained = 0

    def on_step(self, frames, t):
        reward = frames.series.get("reward")
        self.text.content = f"step {t}: reward {reward[t]:.3f}" if reward is not None else f"step {t}"

    def on_poll(self):
        self.gained += len(self.viewer.new_captures)

    def close(self):
        self.closed = True


def test_a_new_panel_is_one_class_and_one_line_in_the_list(tmp_path):
    run = write_demo_run(str(tmp_path), name="demo", checkpoints=2, num_envs=3)
    v = Viewer(run, port=free_port(), poll_s=3600, panels=[*PANELS, StepRewardPanel])
    try:
        panel = v.panel(StepRewardPanel)
        reward = trajscope.open_run(run).capture(-1).load("reward", env=0)
        v.act(v.show_step, 7)
        assert panel.text.content == f"step 7: reward {reward[7]:.3f}"
        v.panel(ReplayPanel).step_by(1)  # the replay panel's button, through the viewer, reaches the toy panel
        assert panel.text.content.startswith("step 8:")
        with trajscope.RunWriter(tmp_path, name="demo") as w:  # training writes one more capture
            w.add_capture(step=10**6, **{k: trajscope.open_run(run).capture(0).load(k) for k in ("qpos",)})
        v.act(v.poll)
        assert panel.gained == 1 and not v.errors
        assert set(v.tabs) == {"Scene", "Plots", "Training", "Analysis", "Play"}  # it joined the Plots tab
    finally:
        v.close()
    assert panel.closed


def test_a_failing_panel_is_reported_and_the_others_go_on(tmp_path):
    class Broken(Panel):
        tab = "Debug"  # a tab of its own, after the viewer's

        def on_step(self, frames, t):
            raise RuntimeError("broken on purpose")

    run = write_demo_run(str(tmp_path), name="demo", checkpoints=1, num_envs=2)
    v = Viewer(run, port=free_port(), poll_s=3600, panels=[Broken, *PANELS])
    try:
        v.act(v.show_step, 5)
        assert v.t == 5 and v.panel(ReplayPanel).step == 5  # the panels after it still ran
        assert any("Broken.on_step: RuntimeError: broken on purpose" in e for e in v.errors)
        assert list(v.tabs)[-1] == "Debug"
    finally:
        v.close()


def test_the_panel_list_is_page_order_only(tmp_path):
    """The viewer runs with nothing but a toy panel (no scene, replay, live or compare
    panel: the app names none), and with the list reversed the plots still draw the
    compared capture's series (Compare fills the view in the load phase, before any panel draws)."""
    run = write_demo_run(str(tmp_path), name="demo", checkpoints=2, num_envs=3)
    v = Viewer(run, port=free_port(), poll_s=3600, panels=[StepRewardPanel])
    try:
        panel = v.panel(StepRewardPanel)
        reward = trajscope.open_run(run).capture(-1).load("reward", env=0)
        v.act(v.show_step, 4)
        assert panel.text.content == f"step 4: reward {reward[4]:.3f}"
        v.act(v.key, "right")  # the next environment, as the arrow key in a tab asks
        assert v.view.env == 1 and v.shown.envs == [1]
        v.act(v.key, "down")  # the older capture
        assert v.shown.capture.info.index == 0
        v.view.layout = "grid"
        v.act(v.reload)
        assert v.shown.envs == [0, 1, 2]
        assert all(
            len(node.batched_positions) == 3 for g, node in v.stage.nodes.items() if g not in v.stage.envs.ground
        )
        assert v.panel(ReplayPanel) is None and not v.errors, v.errors
    finally:
        v.close()
    for order in (PANELS, PANELS[::-1]):
        v = Viewer(run, port=free_port(), poll_s=3600, panels=list(order))
        try:
            v.panel(ComparePanel).which.value = "#0 step 0"
            series = v.panel(PlotsPanel).plots["reward"].series
            assert any("(#0 step 0)" in s["label"] for s in series), (order[0], series)
            assert v.stage.ghost is not None and v.stage.ghost.nodes and not v.errors, v.errors
        finally:
            v.close()


def contact_sheet(run_path: str, *, steps=(0, 25, 50), size=(96, 72)) -> np.ndarray:
    """A toy export format: every environment of the last capture at a few steps, as one
    image, through the sim room alone (the example of docs/architecture.md)."""
    import copy

    import mujoco

    from trajscope import sim

    run = trajscope.open_run(run_path)
    cap = run.capture(-1)
    base = run.load_model()
    fields = {k: cap.load(f"model_fields/{k}") for k in cap.keys("model_fields")}
    rows = []
    for e in range(cap.info.num_envs):
        model = copy.copy(base)
        sim.apply_model_fields(model, fields, e)
        renderer = sim.renderer(model, size[1], size[0])
        data = mujoco.MjData(model)
        qpos = cap.load("qpos", env=e)
        row = []
        for t in steps:
            data.qpos[:] = qpos[min(t, len(qpos) - 1)]
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, sim.camera(model, None))
            row.append(renderer.render())
        renderer.close()
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def test_a_new_export_format_needs_only_sim(tmp_path):
    run = write_demo_run(str(tmp_path), name="demo", checkpoints=1, num_envs=2)
    sheet = contact_sheet(run)
    assert sheet.shape == (2 * 72, 3 * 96, 3) and sheet.dtype == np.uint8
    left, right = sheet[:72, :96].astype(int), sheet[:72, 192:].astype(int)
    assert sheet.std() > 5 and np.abs(left - right).sum() > 0  # a picture, and the cart moved
