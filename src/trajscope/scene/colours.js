// MuJoCo's colours in a viser page (the viewer's and the single-file HTML export's).
// MuJoCo draws a geom's colour times its light, clamped; three.js, under viser, maps what
// it draws through a filmic tone curve that pales and desaturates bright colours. The
// trajscope scene sends linear colours and MuJoCo-scaled lights (trajscope/scene/_stage.py),
// and this turns the tone curve off for every material in the scene, as it appears.
(() => {
  "use strict";
  const win = window;
  // viser's viewer state, found in React's tree: the player (serve/player.js) finds it here too.
  function findViewer() {
    const root = document.getElementById("root");
    if (!root) return null;
    const key = Object.keys(root).find((k) => k.startsWith("__reactContainer$"));
    const stack = key ? [root[key]] : [];
    const seen = new Set();
    while (stack.length) {
      const fiber = stack.pop();
      if (!fiber || seen.has(fiber)) continue;
      seen.add(fiber);
      const v = fiber.memoizedProps && fiber.memoizedProps.value;
      if (v && v.mutable && v.mutable.current && Array.isArray(v.mutable.current.messageQueue) && v.useSceneTree) return v;
      if (fiber.child) stack.push(fiber.child);
      if (fiber.sibling) stack.push(fiber.sibling);
    }
    return null;
  }
  win.__trajscopeFindViewer = findViewer;

  if (win.__trajscopeColours) return;
  const state = { untoned: 0 }; // materials whose tone curve this turned off (tests read it)
  win.__trajscopeColours = state;
  const done = new WeakSet();
  let viewer = null;

  function untone() {
    if (!viewer) viewer = findViewer();
    const scene = viewer && viewer.mutable.current.scene;
    if (!scene) return;
    let changed = false;
    scene.traverse((o) => {
      for (const m of [].concat(o.material || [])) {
        if (done.has(m)) continue;
        done.add(m);
        if (m.toneMapped !== false) {
          m.toneMapped = false;
          m.needsUpdate = true;
          changed = true;
          state.untoned++;
        }
      }
    });
    if (changed && viewer.mutable.current.requestRender) viewer.mutable.current.requestRender();
  }
  setInterval(untone, 300);
})();
