// trajscope's in-browser replay: the server sends each capture once, as blocks of
// quantised geom poses (trajscope/scene/_recording.py says the format); this tab decodes
// them and poses viser's batched meshes itself at display rate. Play, pause, scrub, speed
// and loop need no round trip; each tab keeps its own step. The server hears only the
// step a tab settles on (and, while playing, four times a second), and the arrow keys.
(() => {
  "use strict";
  const win = window;
  if (win.__trajscopePlayer) win.__trajscopePlayer.dispose();
  const MAGIC = 0x54535242;
  const MANAGED_PROPS = new Set(["batched_positions", "batched_wxyzs"]);
  const SPEEDS = [0.1, 0.25, 0.5, 1, 2, 4];
  // Decoded blocks kept at most (bytes of their quantised poses): the compressed blocks are
  // all kept; the decoded ones around the shown step only, decoded again when needed.
  const DECODED_BYTES = 96 * 1024 * 1024;

  function bytesOf(x) {
    if (x instanceof Uint8Array) return x;
    if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    if (x instanceof ArrayBuffer) return new Uint8Array(x);
    return new Uint8Array(0);
  }

  // The viewer object viser hands its React tree, found by its shape once the page is up
  // (by scene/colours.js, which is sent to the page first).
  const findViewer = () => (win.__trajscopeFindViewer ? win.__trajscopeFindViewer() : null);

  async function inflate(u8) {
    const stream = new Blob([u8]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  // One block: header, then lowest positions, quanta, and the two byte-planed,
  // step-differenced arrays; returned as running sums (the quantised poses themselves).
  async function decodeBlock(u8) {
    const head = new DataView(u8.buffer, u8.byteOffset, 20);
    if (head.getUint32(0, true) !== MAGIC || head.getUint32(4, true) !== 1) throw new Error("unknown pose block");
    const T = head.getUint32(8, true), N = head.getUint32(12, true), G = head.getUint32(16, true);
    const body = await inflate(u8.subarray(20));
    const floats = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + 24 * G));
    const lo = floats.subarray(0, 3 * G), quantum = floats.subarray(3 * G, 6 * G);
    const unplane = (offset, n) => {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = body[offset + i] | (body[offset + n + i] << 8);
      return out;
    };
    const np = T * G * N * 3, nq = T * G * N * 4;
    const qp = unplane(24 * G, np), qq = unplane(24 * G + 2 * np, nq);
    const sp = G * N * 3, sq = G * N * 4;
    for (let t = 1; t < T; t++) {
      for (let i = 0; i < sp; i++) qp[t * sp + i] += qp[(t - 1) * sp + i];
      for (let i = 0; i < sq; i++) qq[t * sq + i] += qq[(t - 1) * sq + i];
    }
    return { T, N, G, lo, quantum, qp, qq: new Int16Array(qq.buffer) };
  }

  class Player {
    constructor() {
      this.viewer = null;
      this.original = null;
      this.rec = null;
      this.blocks = [];
      this.poses = null;
      this.decoded = new Map();
      this.decoding = new Set();
      this.posed = {};
      this.openedAt = null;
      this.firstPoseAt = null;
      this.firstDrawnAt = null;
      this.t = 0;
      this.playing = false;
      this.speed = 1;
      this.loop = true;
      this.shownT = -1;
      this.repush = 0;
      this.clock = 0;
      this.lastReport = 0;
      this.reported = null;
      this.settleTimer = null;
      this.frames = [];
      this.disposed = false;
      this.deadline = performance.now() + 15000;
      this.onKey = (e) => this.key(e);
      this.tick = (now) => this.frame(now);
      this.applyMs = [];
      this.install();
    }

    install() {
      if (this.disposed) return;
      const viewer = findViewer();
      if (!viewer) {
        if (performance.now() < this.deadline) requestAnimationFrame(() => this.install());
        else console.error("trajscope: the viewer was not found; replay plays from the server only");
        return;
      }
      this.viewer = viewer;
      const queue = viewer.mutable.current.messageQueue;
      const push = queue.push.bind(queue);
      this.original = push;
      this.queue = queue;
      queue.push = (...messages) => {
        const kept = messages.filter((m) => !this.route(m));
        return kept.length ? push(...kept) : queue.length;
      };
      this.buildBar();
      document.addEventListener("keydown", this.onKey, true);
      requestAnimationFrame(this.tick);
      this.onResize = () => this.sendReady();
      window.addEventListener("resize", this.onResize);
      this.placing = setInterval(() => this.placeBar(), 500);
      this.sendReady();
    }

    // Ready, with the page's size in CSS pixels (viser's camera reports render pixels).
    sendReady() {
      this.send({ type: "TrajscopeReadyMessage", page_width: window.innerWidth, page_height: window.innerHeight });
    }

    dispose() {
      this.disposed = true;
      if (this.onResize) window.removeEventListener("resize", this.onResize);
      if (this.placing) clearInterval(this.placing);
      if (this.queue && this.original) this.queue.push = this.original;
      document.removeEventListener("keydown", this.onKey, true);
      if (this.bar) this.bar.remove();
    }

    send(message) {
      if (this.viewer && this.viewer.messageSource !== "file_playback") this.viewer.mutable.current.sendMessage(message);
    }

    // True when the message is the player's (it is then not viser's to handle).
    route(m) {
      switch (m.type) {
        case "TrajscopeRecordingMessage":
          this.open(m);
          return true;
        case "TrajscopeBlockMessage":
          this.addBlock(m);
          return true;
        case "TrajscopeControlMessage":
          this.control(m);
          return true;
        case "SceneNodeUpdateMessage":
          // Poses of the nodes this tab plays are this tab's own, once it has drawn a step
          // itself (until then the server's pose of the shown step is the first frame).
          if (this.rec && !this.released && this.rec.names.has(m.name) && Object.keys(m.updates).every((k) => MANAGED_PROPS.has(k))) {
            if (this.shownT >= 0) return true;
            if (this.firstPoseAt === null) this.firstPoseAt = performance.now();
          }
          return false;
        default:
          return false;
      }
    }

    open(m) {
      if (this.rec && this.rec.id === m.id) return; // sent again (a tab that joined as it was published)
      const offsets = new Float32Array(bytesOf(m.offsets).slice().buffer);
      const ints = (b) => new Int32Array(bytesOf(b).slice().buffer);
      const slots = (m.node_slots || []).map(ints), items = (m.node_items || []).map(ints);
      this.rec = {
        id: m.id,
        steps: m.num_steps,
        dt: m.dt_s,
        nodes: m.nodes,
        names: new Set(m.nodes),
        items,
        slots,
        N: m.num_envs,
        offsets,
        blockSteps: m.block_steps,
        label: m.label,
        follow: m.follow,
      };
      if (m.poses !== this.poses || this.blocks.length !== Math.ceil(m.num_steps / m.block_steps)) {
        // Another capture's poses: what this tab holds of the last one goes.
        this.poses = m.poses;
        this.blocks = new Array(Math.ceil(m.num_steps / m.block_steps)).fill(null);
        this.decoded = new Map();
        this.decoding = new Set();
      }
      this.openedAt = performance.now();
      this.firstPoseAt = null;
      this.firstDrawnAt = null;
      this.released = false;
      this.t = Math.min(Math.max(m.step, 0), m.num_steps - 1);
      this.playing = !!m.playing;
      this.shownT = -1;
      this.repush = 4;
      this.clock = performance.now();
      this.slider.max = String(Math.max(m.num_steps - 1, 1));
      this.updateBar();
    }

    get received() {
      let n = 0;
      for (const b of this.blocks) if (b) n += 1;
      return n;
    }

    addBlock(m) {
      if (m.id !== this.poses || this.blocks[m.index]) return;
      this.blocks[m.index] = bytesOf(m.data).slice();
      if (this.rec && Math.floor(this.t / this.rec.blockSteps) === m.index) this.shownT = -1;
      this.updateBar();
    }

    // The decoded block `index`, or null while it is being decoded (started here).
    block(index) {
      const b = this.decoded.get(index);
      if (b) {
        this.decoded.delete(index); // most recently used last
        this.decoded.set(index, b);
        return b;
      }
      const raw = this.blocks[index];
      if (!raw || this.decoding.has(index)) return null;
      const poses = this.poses;
      this.decoding.add(index);
      decodeBlock(raw).then((d) => {
        this.decoding.delete(index);
        if (this.poses !== poses) return;
        d.bytes = 2 * (d.qp.length + d.qq.length);
        this.decoded.set(index, d);
        let total = 0;
        for (const x of this.decoded.values()) total += x.bytes;
        for (const [k, x] of this.decoded) {
          if (total <= DECODED_BYTES || this.decoded.size <= 2) break;
          this.decoded.delete(k);
          total -= x.bytes;
        }
        if (this.rec && Math.floor(this.t / this.rec.blockSteps) === index) this.shownT = -1;
      }, (err) => {
        this.decoding.delete(index);
        console.error("trajscope: a pose block could not be decoded", err);
      });
      return null;
    }

    decodedBytes() {
      let total = 0;
      for (const x of this.decoded.values()) total += x.bytes;
      return total;
    }

    control(m) {
      this.released = m.action === "release";
      if (this.released) {
        this.playing = false;
      } else if (m.action === "seek") {
        this.playing = false;
        this.shownT = -1;
        this.seek(m.step, false);
      } else if (m.action === "play") {
        this.playing = true;
        this.clock = performance.now();
      } else if (m.action === "pause") {
        this.playing = false;
        this.settle();
      } else if (m.action === "speed") {
        this.speed = m.value;
      } else if (m.action === "loop") {
        this.loop = !!m.value;
      }
      this.updateBar();
    }

    seek(t, report = true) {
      if (!this.rec) return;
      if (report && this.released) {
        this.released = false;
        this.shownT = -1;
      }
      this.t = Math.min(Math.max(Math.round(t), 0), this.rec.steps - 1);
      this.clock = performance.now();
      if (report) this.settle();
      this.updateBar();
    }

    settle() {
      clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => this.report(false), 150);
    }

    report(ended) {
      if (!this.rec) return;
      const key = `${this.rec.id}:${this.t}:${this.playing}:${ended}`;
      if (key === this.reported) return;
      this.reported = key;
      this.lastReport = performance.now();
      this.send({ type: "TrajscopeStepMessage", id: this.rec.id, step: this.t, playing: this.playing, ended });
    }

    frame(now) {
      if (this.disposed) return;
      requestAnimationFrame(this.tick);
      this.frames.push(now);
      if (this.frames.length > 600) this.frames.splice(0, 300);
      const rec = this.rec;
      if (!rec || this.released) return;
      if (this.playing) {
        const stepS = rec.dt / this.speed;
        const ahead = Math.floor((now - this.clock) / 1000 / stepS);
        if (ahead > 0) {
          this.clock += ahead * stepS * 1000;
          let t = this.t + ahead;
          if (t >= rec.steps) {
            if (this.loop && !rec.follow) t = t % rec.steps;
            else {
              t = rec.steps - 1;
              this.playing = false;
              this.t = t;
              this.report(true);
              this.updateBar();
            }
          }
          this.t = t;
          this.updateBar();
        }
        if (now - this.lastReport > 250) this.report(false);
      }
      if (this.t !== this.shownT || (this.repush > 0 && now - (this.repushedAt || 0) > 250)) {
        if (this.t === this.shownT) {
          this.repush -= 1;
        }
        this.repushedAt = now;
        if (this.apply(this.t)) this.shownT = this.t;
      }
    }

    // Pose every node at step t; false while its block has not come (or is being decoded).
    apply(t) {
      const rec = this.rec;
      const index = Math.floor(t / rec.blockSteps);
      const b = this.original ? this.block(index) : null;
      if (this.playing && index + 1 < this.blocks.length) this.block(index + 1); // decoded ahead
      if (!b) return false;
      const started = performance.now();
      const k = t % rec.blockSteps;
      const { N, G, lo, quantum, qp, qq } = b;
      const off = rec.offsets;
      const messages = [];
      for (let j = 0; j < rec.nodes.length; j++) {
        const slots = rec.slots[j], items = rec.items[j];
        const n = slots.length;
        const pos = new Float32Array(n * 3), wxyz = new Float32Array(n * 4);
        for (let i = 0; i < n; i++) {
          const e = slots[i], g = items[i];
          if (g >= G || e >= N) continue;
          const bp = (k * G + g) * N * 3, bq = (k * G + g) * N * 4;
          const src = 3 * e, dst = 3 * i;
          pos[dst] = lo[3 * g] + qp[bp + src] * quantum[3 * g] + off[src];
          pos[dst + 1] = lo[3 * g + 1] + qp[bp + src + 1] * quantum[3 * g + 1] + off[src + 1];
          pos[dst + 2] = lo[3 * g + 2] + qp[bp + src + 2] * quantum[3 * g + 2] + off[src + 2];
          const qs = 4 * e, qd = 4 * i;
          wxyz[qd] = qq[bq + qs] / 32767;
          wxyz[qd + 1] = qq[bq + qs + 1] / 32767;
          wxyz[qd + 2] = qq[bq + qs + 2] / 32767;
          wxyz[qd + 3] = qq[bq + qs + 3] / 32767;
        }
        messages.push({ type: "SceneNodeUpdateMessage", name: rec.nodes[j], owner: "", updates: { batched_positions: pos, batched_wxyzs: wxyz } });
        this.posed[rec.nodes[j]] = pos;
      }
      this.original(...messages);
      // The tab's own work per posed step (decoded poses to viser's scene updates), apart
      // from drawing: what a GPU does not take off the page.
      this.applyMs.push(performance.now() - started);
      if (this.applyMs.length > 600) this.applyMs.splice(0, 300);
      if (this.firstDrawnAt === null) this.firstDrawnAt = performance.now();
      const m = this.viewer.mutable.current;
      if (typeof m.requestRender === "function") m.requestRender();
      return true;
    }

    key(e) {
      const target = e.target;
      const typing = target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "range" && target.type !== "checkbox"));
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      const keys = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down" };
      if (e.code === "Space") {
        e.preventDefault();
        e.stopPropagation();
        this.toggle();
      } else if (keys[e.key]) {
        e.preventDefault();
        e.stopPropagation();
        this.send({ type: "TrajscopeKeyMessage", key: keys[e.key] });
      } else if (e.key === "," || e.key === ".") {
        this.playing = false;
        this.seek(this.t + (e.key === "," ? -1 : 1));
      }
    }

    toggle() {
      if (!this.rec) return;
      if (this.released) {
        this.released = false;
        this.shownT = -1;
      }
      if (!this.playing && this.t >= this.rec.steps - 1) this.t = 0;
      this.playing = !this.playing;
      this.clock = performance.now();
      if (!this.playing) this.settle();
      this.updateBar();
    }

    // The bar stands at the canvas' bottom left: right of a column docked at the page's left.
    placeBar() {
      if (!this.bar) return;
      let left = 0;
      let area = 0;
      for (const c of document.querySelectorAll("canvas")) {
        const r = c.getBoundingClientRect();
        if (r.width * r.height > area) { area = r.width * r.height; left = r.left; }
      }
      const px = `${Math.round(Math.max(0, left)) + 12}px`;
      if (this.bar.style.left !== px) this.bar.style.left = px;
    }

    buildBar() {
      const bar = document.createElement("div");
      bar.id = "trajscope-player";
      bar.style.cssText = "position:fixed;left:12px;bottom:12px;z-index:1000;display:flex;gap:8px;align-items:center;padding:6px 10px;border-radius:8px;background:rgba(20,20,28,0.82);color:#eee;font:13px system-ui,sans-serif;width:min(760px,calc(100vw - 420px));min-width:300px;max-width:calc(100vw - 400px)";
      const button = (text, title) => {
        const b = document.createElement("button");
        b.textContent = text;
        b.title = title;
        b.style.cssText = "background:#333a;color:#eee;border:1px solid #666;border-radius:5px;padding:2px 8px;cursor:pointer";
        bar.appendChild(b);
        return b;
      };
      this.playButton = button("play", "Play or pause this tab's replay (space)");
      this.playButton.id = "trajscope-play";
      this.playButton.onclick = () => this.toggle();
      const back = button("<", "Step back (,)");
      back.onclick = () => { this.playing = false; this.seek(this.t - 1); };
      const fwd = button(">", "Step forward (.)");
      fwd.onclick = () => { this.playing = false; this.seek(this.t + 1); };
      this.slider = document.createElement("input");
      this.slider.type = "range";
      this.slider.id = "trajscope-step";
      this.slider.min = "0";
      this.slider.max = "1";
      this.slider.value = "0";
      this.slider.style.flex = "1";
      this.slider.oninput = () => { this.playing = false; this.seek(Number(this.slider.value)); };
      bar.appendChild(this.slider);
      this.label = document.createElement("span");
      this.label.id = "trajscope-step-label";
      this.label.style.cssText = "min-width:11em;font-variant-numeric:tabular-nums";
      bar.appendChild(this.label);
      this.speedMenu = document.createElement("select");
      this.speedMenu.title = "Multiple of real time";
      for (const s of SPEEDS) {
        const o = document.createElement("option");
        o.value = String(s);
        o.textContent = `${s}x`;
        this.speedMenu.appendChild(o);
      }
      this.speedMenu.value = "1";
      this.speedMenu.onchange = () => { this.speed = Number(this.speedMenu.value); this.clock = performance.now(); };
      bar.appendChild(this.speedMenu);
      const loop = document.createElement("label");
      this.loopBox = document.createElement("input");
      this.loopBox.type = "checkbox";
      this.loopBox.checked = true;
      this.loopBox.onchange = () => { this.loop = this.loopBox.checked; };
      loop.append(this.loopBox, " loop");
      bar.appendChild(loop);
      const hint = document.createElement("span");
      hint.textContent = "space ←→ ↑↓";
      hint.title = "Keys: space plays and pauses, left/right switch environments, up/down newer/older capture, comma/period step";
      hint.style.cssText = "opacity:0.6;font-size:11px;white-space:nowrap";
      bar.appendChild(hint);
      document.body.appendChild(bar);
      this.bar = bar;
      this.updateBar();
    }

    updateBar() {
      if (!this.bar) return;
      const rec = this.rec;
      this.playButton.textContent = this.playing ? "pause" : "play";
      if (!rec) {
        this.label.textContent = "no capture";
        return;
      }
      if (String(this.t) !== this.slider.value) this.slider.value = String(this.t);
      const received = this.received;
      const loading = received < this.blocks.length ? ` · loading ${received}/${this.blocks.length}` : "";
      this.label.textContent = `step ${this.t} / ${rec.steps - 1}${loading}`;
    }

    // For tests: the positions this tab last gave node `name` (world, offsets added).
    positions(name) {
      const p = this.posed[name];
      return p ? Array.from(p) : null;
    }

    // For tests and benchmarks: what this tab shows, and its frame intervals (ms).
    state() {
      const f = this.frames;
      const dts = [];
      for (let i = 1; i < f.length; i++) dts.push(f[i] - f[i - 1]);
      return {
        id: this.rec ? this.rec.id : null,
        step: this.t,
        playing: this.playing,
        shown: this.shownT,
        steps: this.rec ? this.rec.steps : 0,
        blocks: this.blocks.length,
        received: this.rec ? this.received : 0,
        poses: this.poses,
        openedAt: this.openedAt,
        firstPoseAt: this.firstPoseAt,
        firstDrawnAt: this.firstDrawnAt,
        decodedBytes: this.decodedBytes(),
        storedBytes: this.blocks.reduce((a, b) => a + (b ? b.length : 0), 0),
        frameIntervals: dts,
        applyMs: this.applyMs.slice(),
      };
    }
  }

  win.__trajscopePlayer = new Player();
})();
