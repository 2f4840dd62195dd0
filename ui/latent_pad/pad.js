// The latent pad component (st.components.v2): a 2-D pad over the latent map and sliders for latent dimensions,
// decoded in the page by decoder.js (ui/latent_point.py puts ui/component_common/common.js and decoder.js before
// this file: one ES module).
//
// Data from Python on every run (small): {decoder_id, scene_id, z, y, slider_dims} (z and y null when the page
// already shows Python's point: then a rerun's element is unchanged and Streamlit sends a reference), plus, only when this page
// does not have them yet, `decoder` (the exported weights, base64 float32) and `scene` (view, extent, test-set
// points, labels, slider ranges). What arrived is kept in window.__latentLab for the life of the page, so a rerun,
// a remount after a page switch, or a switch back to an earlier model sends no weights again. If a rerun
// arrives without something this page lacks, the component asks for it with the one-shot trigger `need`.
// Back to Python, on release only: the state `point` = {decoder_id, scene_id, z, y, p}.
//
// Test hook in the main document: window.__latentLab.decode(z, y[, decoderId]) -> Array of floats (C*H*W, in [0, 1],
// before 8-bit quantisation), .decodeMany(zs, y), .state(), .latency (input event -> image painted, ms).

const LL = (window.__latentLab ??= {
  version: 1,
  decoders: new Map(), // decoder_id -> compiled decoder (compileDecoder)
  scenes: new Map(), // scene_id -> scene
  active: null, // the pad instance the user touched or that rendered last
  latency: [], // {kind, t0, t1, frame}: handler entry, image painted, next animation frame (performance.now())
  paints: 0,
  decode(z, y = null, decoderId = null) {
    const dec = this.decoders.get(decoderId ?? this.active?.decoderId);
    if (!dec) throw new Error(`no decoder ${decoderId ?? "(none active)"} in this page`);
    return Array.from(dec.decode(z, y));
  },
  decodeMany(zs, y = null, decoderId = null) {
    return zs.map((z, i) => this.decode(z, Array.isArray(y) ? y[i] : y, decoderId));
  },
  state() {
    const a = this.active;
    return a && {decoderId: a.decoderId, sceneId: a.sceneId, z: Array.from(a.z ?? []), y: a.y, p: a.p.slice(),
      ready: !!a.dec, dragging: a.dragging};
  },
});
const MAX_CACHED = 8; // decoders kept per page (a shapes decoder is ~4 MB once unpacked)
const MAX_LATENCY = 5000;
const KEY_SEND_DELAY_MS = 300;

function sameVector(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > 1e-9) return false;
  return true;
}

class Pad extends ComponentView {
  constructor(root) {
    super(root);
    this.padCanvas = this.el("canvas.latent-pad");
    this.imageCanvas = this.el("canvas.latent-image");
    this.marker = this.el(".pad-marker"); // an overlay moved with a CSS transform: the canvas is drawn once
    this.decoderId = null;
    this.sceneId = null;
    this.dec = null;
    this.scene = null;
    this.z = null;
    this.y = null;
    this.p = [0, 0];
    this.dragging = false;
    this.sent = []; // points sent back to Python: their echo must not move the pad
    this.lastDataZ = null;
    this.size = 0;
    this.sliderDims = [];
    this.bind();
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(this.el(".pad-root"));
  }

  // -- data from Python ------------------------------------------------------------------------------------
  update(data, setStateValue, setTriggerValue) {
    this.setStateValue = setStateValue;
    this.setTriggerValue = setTriggerValue;
    if (data.decoder) {
      try {
        remember(LL.decoders, data.decoder_id, compileDecoder(data.decoder), MAX_CACHED);
      } catch (err) {
        this.status(`The browser cannot run this decoder (${err.message}).`, true);
        return;
      }
    }
    if (data.scene) remember(LL.scenes, data.scene_id, data.scene, MAX_CACHED);
    const dec = LL.decoders.get(data.decoder_id), scene = LL.scenes.get(data.scene_id);
    if (!dec || !scene) {
      this.status("Loading the decoder\u2026");
      askOnce(this.asked, {decoder: dec ? null : data.decoder_id, scene: scene ? null : data.scene_id}, setTriggerValue);
      return;
    }
    const switched = data.decoder_id !== this.decoderId || data.scene_id !== this.sceneId;
    if (switched) {
      this.decoderId = data.decoder_id;
      this.sceneId = data.scene_id;
      this.dec = dec;
      this.scene = scene;
      this.z = new Float64Array(dec.latentDim);
      this.sent = [];
      this.lastDataZ = null;
      this.imageCanvas.width = dec.width;
      this.imageCanvas.height = dec.height;
      this.imageData = this.imageCanvas.getContext("2d").createImageData(dec.width, dec.height);
      this.buildClasses();
      this.drawLegend();
    }
    const dims = (data.slider_dims ?? []).filter((d) => d >= 0 && d < dec.latentDim);
    if (switched || dims.join() !== this.sliderDims.join()) this.buildSliders(dims);
    // Python's point moves the pad only when it is new: not the echo of one this page sent, not mid-drag.
    const z = data.z && data.z.length === dec.latentDim ? data.z : null;
    const y = dec.numClasses ? Math.min(Math.max(data.y ?? 0, 0), dec.numClasses - 1) : null;
    if (z) {
      const isNew = !sameVector(z, this.lastDataZ) || y !== this.lastDataY;
      const isEcho = this.sent.some((s) => sameVector(s.z, z) && s.y === y);
      if (switched || (isNew && !isEcho && !this.dragging)) {
        for (let i = 0; i < dec.latentDim; i++) this.z[i] = Math.fround(z[i]);
        this.p = this.project(this.z);
        this.y = y;
      }
      this.lastDataZ = z.slice();
      this.lastDataY = y;
    } else if (switched) { // a new pad whose Python side believes it shows the point already: ask for it
      this.inverse([0, 0], this.z);
      this.p = [0, 0];
      this.y = dec.numClasses ? 0 : null;
      setTriggerValue("need", {point: true});
    }
    this.status(`Decoding in your browser \u00b7 ${dec.nParameters.toLocaleString("en")} weights`);
    this.layout(true);
    this.render(null);
  }

  // -- the view's maps: z = mean + p @ C (float32, like LatentView.inverse_transform), p = (z - mean) @ C^T ----
  inverse(p, out) {
    const {mean, components: C} = this.scene.view;
    for (let d = 0; d < out.length; d++) out[d] = Math.fround(mean[d] + p[0] * C[0][d] + p[1] * C[1][d]);
    return out;
  }

  project(z) {
    const {mean, components: C} = this.scene.view;
    const p = [0, 0];
    for (let d = 0; d < z.length; d++) {
      p[0] += (z[d] - mean[d]) * C[0][d];
      p[1] += (z[d] - mean[d]) * C[1][d];
    }
    return p;
  }

  toPad(x, y) {
    const [x0, x1, y0, y1] = this.scene.extent;
    return [((x - x0) / (x1 - x0)) * this.size, ((y1 - y) / (y1 - y0)) * this.size];
  }

  fromPointer(ev) {
    const r = this.padCanvas.getBoundingClientRect();
    const fx = Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1);
    const fy = Math.min(Math.max((ev.clientY - r.top) / r.height, 0), 1);
    const [x0, x1, y0, y1] = this.scene.extent;
    return [x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)];
  }

  // -- input ------------------------------------------------------------------------------------------------
  bind() {
    const pad = this.padCanvas;
    pad.addEventListener("pointerdown", (ev) => {
      if (!this.dec || ev.button !== 0) return;
      const t0 = performance.now();
      this.dragging = true;
      LL.active = this;
      pad.setPointerCapture(ev.pointerId);
      this.moveTo(this.fromPointer(ev), "pointer", t0);
    });
    pad.addEventListener("pointermove", (ev) => {
      if (!this.dragging) return;
      const t0 = performance.now();
      this.moveTo(this.fromPointer(ev), "pointer", t0);
    });
    onPointerEnd(pad, () => {
      if (!this.dragging) return;
      this.dragging = false;
      this.send();
    });
    pad.addEventListener("keydown", (ev) => {
      const step = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1]}[ev.key];
      if (!step || !this.dec) return;
      const t0 = performance.now();
      ev.preventDefault();
      LL.active = this;
      const [x0, x1, y0, y1] = this.scene.extent, k = ev.shiftKey ? 0.1 : 0.02;
      const p = [this.p[0] + step[0] * k * (x1 - x0), this.p[1] + step[1] * k * (y1 - y0)];
      this.moveTo([Math.min(Math.max(p[0], x0), x1), Math.min(Math.max(p[1], y0), y1)], "key", t0);
    });
    pad.addEventListener("keyup", (ev) => {
      if (ev.key.startsWith("Arrow") && this.dec) this.send(KEY_SEND_DELAY_MS);
    });
  }

  moveTo(p, kind, t0) {
    this.p = p;
    this.inverse(p, this.z); // the pad sets every dimension
    this.render(kind, t0);
  }

  buildSliders(dims) {
    this.sliderDims = dims.slice();
    const box = this.el(".sliders");
    box.replaceChildren();
    this.sliders = dims.map((d) => {
      const [lo, hi] = this.scene.ranges[d];
      const row = document.createElement("label");
      row.className = "slider-row";
      const name = document.createElement("span");
      name.className = "slider-name";
      name.textContent = `z[${d}]`;
      const input = document.createElement("input");
      Object.assign(input, {type: "range", min: lo, max: hi, step: (hi - lo) / 400});
      input.className = "latent-slider";
      input.dataset.dim = String(d);
      input.setAttribute("aria-label", `latent dimension ${d}`);
      const value = document.createElement("span");
      value.className = "slider-value";
      input.addEventListener("input", () => {
        const t0 = performance.now();
        LL.active = this;
        this.z[d] = Math.fround(parseFloat(input.value));
        this.p = this.project(this.z); // the marker shows where the new point projects onto the view
        this.render("slider", t0, d);
      });
      input.addEventListener("change", () => this.send(KEY_SEND_DELAY_MS));
      row.append(name, input, value);
      box.append(row);
      return {d, input, value};
    });
  }

  buildClasses() {
    const box = this.el(".classes");
    box.replaceChildren();
    if (!this.dec.numClasses) return;
    const names = this.scene.label_names ?? [];
    const title = document.createElement("span");
    title.className = "classes-title";
    title.textContent = "Class";
    box.append(title);
    this.classButtons = [];
    for (let k = 0; k < this.dec.numClasses; k++) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "class-button toggle-button";
      b.dataset.cls = String(k);
      b.textContent = names[k] ?? String(k);
      b.addEventListener("click", () => {
        const t0 = performance.now();
        LL.active = this;
        this.y = k;
        this.render("class", t0);
        this.send();
      });
      box.append(b);
      this.classButtons.push(b);
    }
  }

  // Pointer up and class clicks send at once; keyboard changes (a slider's arrow keys, the pad's) once the keys
  // rest for a moment, so a run of presses is one rerun, not one each.
  send(delayMs = 0) {
    clearTimeout(this.sendTimer);
    if (delayMs > 0) {
      this.sendTimer = setTimeout(() => this.send(0), delayMs);
      return;
    }
    // seq: every send is a new state value, so a release at the very point released before (arrow keys from the
    // same start) still reaches Python, whose point may have moved since (a page's start button).
    LL.sendSeq = Math.max((LL.sendSeq ?? 0) + 1, Date.now());
    const point = {decoder_id: this.decoderId, scene_id: this.sceneId, z: Array.from(this.z), y: this.y,
      p: this.p.slice(), seq: LL.sendSeq};
    this.sent.push(point);
    if (this.sent.length > 16) this.sent.shift();
    // The user moved off Python's last point: Python sending that same point again (a page's "centre" button
    // pressed twice, with a drag between) must move the pad back, so it counts as new from now on.
    this.lastDataZ = null;
    this.setStateValue?.("point", point);
  }

  // -- drawing ----------------------------------------------------------------------------------------------
  layout(force = false) {
    if (!this.scene) return;
    const width = this.el(".pad-root").clientWidth || 640;
    const side = (this.el(".side-col").offsetWidth || 236) + 24; // the image column and the gap
    const size = Math.round(width >= 560 ? Math.min(440, Math.max(240, width - side - 24)) : Math.min(width, 440));
    if (size === this.size && !force) return;
    const dpr = window.devicePixelRatio || 1;
    this.size = size;
    this.dpr = dpr;
    this.padCanvas.width = Math.round(size * dpr);
    this.padCanvas.height = Math.round(size * dpr);
    this.padCanvas.style.width = this.padCanvas.style.height = `${size}px`;
    this.drawBackground();
    this.drawPad();
  }

  drawBackground() {
    const ctx = this.padCanvas.getContext("2d"), s = this.size, dpr = this.dpr, sc = this.scene;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const css = getComputedStyle(this.padCanvas);
    const fg = css.getPropertyValue("--pad-fg").trim() || "#31333f";
    ctx.fillStyle = css.getPropertyValue("--pad-bg").trim() || "#f8f9fb";
    ctx.fillRect(0, 0, s, s);
    const [x0, x1, y0, y1] = sc.extent;
    // Grid at whole units of the view (or tenths when the extent is small), axes through 0 a little darker.
    const unit = Math.max(x1 - x0, y1 - y0) > 4 ? 1 : 0.1;
    ctx.lineWidth = 1;
    for (let v = Math.ceil(x0 / unit) * unit; v <= x1; v += unit) {
      const [px] = this.toPad(v, 0);
      ctx.strokeStyle = Math.abs(v) < unit / 2 ? "rgba(49,51,63,0.35)" : "rgba(49,51,63,0.08)";
      ctx.beginPath(); ctx.moveTo(px, 0); ctx.lineTo(px, s); ctx.stroke();
    }
    for (let v = Math.ceil(y0 / unit) * unit; v <= y1; v += unit) {
      const [, py] = this.toPad(0, v);
      ctx.strokeStyle = Math.abs(v) < unit / 2 ? "rgba(49,51,63,0.35)" : "rgba(49,51,63,0.08)";
      ctx.beginPath(); ctx.moveTo(0, py); ctx.lineTo(s, py); ctx.stroke();
    }
    if (sc.points) drawPoints(ctx, sc.points, sc.palette, (x, y) => this.toPad(x, y), 3);
    drawAxisLabels(ctx, sc.view.axis_labels, s, fg);
  }

  drawPad() {
    if (!this.scene || !this.size) return;
    const [px, py] = this.toPad(this.p[0], this.p[1]);
    this.marker.style.transform = `translate(${px}px, ${py}px)`;
    this.marker.hidden = false;
  }

  drawLegend() {
    const box = this.el(".legend");
    box.replaceChildren();
    const sc = this.scene;
    if (!sc.points || !sc.label_names) return;
    sc.label_names.forEach((name, k) => {
      const item = document.createElement("span");
      item.className = "legend-item";
      const dot = document.createElement("span");
      dot.className = "legend-dot";
      dot.style.background = sc.palette[k % sc.palette.length];
      item.append(dot, document.createTextNode(name));
      box.append(item);
    });
  }

  // Decode and paint now, in the event handler: the new image is on screen in the next frame.
  render(kind, t0 = performance.now(), activeSlider = -1) {
    if (!this.dec || !this.size) return;
    const img = this.dec.decode(this.z, this.y);
    paintImage(this.dec, img, this.imageData);
    this.imageCanvas.getContext("2d").putImageData(this.imageData, 0, 0);
    const t1 = performance.now();
    LL.paints++;
    if (!LL.active) LL.active = this;
    this.drawPad();
    for (const s of this.sliders ?? []) {
      if (s.d !== activeSlider) s.input.value = String(this.z[s.d]);
      s.value.textContent = fmt(this.z[s.d]);
    }
    (this.classButtons ?? []).forEach((b, k) => b.classList.toggle("selected", k === this.y));
    const d = this.z.length;
    this.el(".readout").textContent = d <= 4
      ? `z = (${Array.from(this.z, fmt).join(", ")})`
      : `pad (${fmt(this.p[0])}, ${fmt(this.p[1])}) \u00b7 z has ${d} numbers`;
    this.el(".timing").textContent = `${(t1 - t0).toFixed(1)} ms to decode and paint`;
    if (kind) logLatency(LL.latency, this.pendingFrame, {kind, t0, t1, frame: null}, MAX_LATENCY);
  }

  status(text, isError = false) {
    showStatus(this.el(".status"), text, isError);
  }

  destroy() {
    this.resizeObserver.disconnect();
    if (LL.active === this) LL.active = null;
  }
}

export default function (component) {
  return mountOnce(component, "__latentPad", (root) => new Pad(root), (pad) => pad.destroy());
}
