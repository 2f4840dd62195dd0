// The drawing box (st.components.v2): draw a digit; on every stroke it is preprocessed like MNIST, encoded in the
// page by encoder.js, its posterior (the mean μ and one standard deviation σ) drawn as an ellipse on a small latent
// map, and μ decoded by decoder.js into the reconstruction. On release the code goes back to Python.
// ui/draw_digit.py puts ui/component_common/common.js, the latent pad's decoder.js and encoder.js before this file
// (one ES module).
//
// Data from Python on every run: {model_id, y, scene: {dims, extent, points, palette, axis_labels}}, plus, only
// when this page does not hold them yet, `encoder` and `decoder` (base64 float32 weights). A decoder the latent pad
// received already (window.__latentLab) is used as it is. If a run arrives without something this page lacks, the
// component asks for it with the one-shot trigger `need`.
// Back to Python, on release only: the state `code` = {model_id, mu, logvar, x, seq}.
//
// Test hook in the main document: window.__latentDraw.encode(x, y[, modelId]) -> {mu, logvar} (Arrays),
// .input() -> the last preprocessed 28x28 input (Array), .latency: per pointer move {tEvent, t0, t1, frame}
// (the event's timestamp, handler entry, both views painted, the next animation frame; performance.now()).

const LD = (window.__latentDraw ??= {
  version: 1,
  encoders: new Map(),
  decoders: new Map(),
  active: null,
  latency: [],
  updates: 0,
  encode(x, y = null, modelId = null) {
    const enc = this.encoders.get(modelId ?? this.active?.modelId);
    if (!enc) throw new Error(`no encoder ${modelId ?? "(none active)"} in this page`);
    const {mu, logvar} = enc.encode(x, y);
    return {mu: Array.from(mu), logvar: logvar && Array.from(logvar)};
  },
  input() {
    return this.active?.x ? Array.from(this.active.x) : null;
  },
});
const DRAW_MAX_CACHED = 4;
const DRAW_MAX_LATENCY = 5000;
const SIDE = 28, BOX = 20; // MNIST: the digit fitted into 20x20, centred by its centre of mass in 28x28
const PEN_PX = 2; // the stroke's width at 28x28 scale
const ERASER_PX = 5;

// The canvas's ink (alpha, size x size) -> 28x28 values in [0, 1], MNIST's way: the bounding box of the ink scaled
// (aspect kept) so that its longer side is 20 pixels (area average when shrinking, nearest pixel when growing),
// put in a 28x28 field and shifted so that the centre of mass of its values is at the field's centre.
// Returns false when nothing is drawn.
function preprocess(alpha, size, out, box) {
  let x0 = size, x1 = -1, y0 = size, y1 = -1;
  for (let y = 0; y < size; y++) {
    const row = y * size;
    for (let x = 0; x < size; x++) {
      if (alpha[(row + x) * 4 + 3] !== 0) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  out.fill(0);
  if (x1 < 0) return false;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1, s = BOX / Math.max(bw, bh);
  const tw = Math.max(1, Math.min(BOX, Math.round(bw * s))), th = Math.max(1, Math.min(BOX, Math.round(bh * s)));
  box.fill(0);
  if (s < 1) { // area average: every source pixel adds into the target pixel it falls in
    const count = new Float64Array(tw * th);
    for (let y = y0; y <= y1; y++) {
      const ty = Math.min(th - 1, Math.floor((y - y0) * s));
      for (let x = x0; x <= x1; x++) {
        const tx = Math.min(tw - 1, Math.floor((x - x0) * s));
        box[ty * tw + tx] += alpha[(y * size + x) * 4 + 3] / 255;
        count[ty * tw + tx] += 1;
      }
    }
    for (let i = 0; i < tw * th; i++) if (count[i] > 0) box[i] /= count[i];
  } else {
    for (let ty = 0; ty < th; ty++) {
      const y = Math.min(y1, y0 + Math.floor((ty + 0.5) / s));
      for (let tx = 0; tx < tw; tx++) {
        const x = Math.min(x1, x0 + Math.floor((tx + 0.5) / s));
        box[ty * tw + tx] = alpha[(y * size + x) * 4 + 3] / 255;
      }
    }
  }
  let mass = 0, mx = 0, my = 0;
  for (let ty = 0; ty < th; ty++) {
    for (let tx = 0; tx < tw; tx++) {
      const v = box[ty * tw + tx];
      mass += v; mx += v * (tx + 0.5); my += v * (ty + 0.5);
    }
  }
  // the box's top-left corner in the field, so that the centre of mass lands at (14, 14), kept inside the field
  const ox = Math.min(Math.max(Math.round(SIDE / 2 - mx / mass), 0), SIDE - tw);
  const oy = Math.min(Math.max(Math.round(SIDE / 2 - my / mass), 0), SIDE - th);
  for (let ty = 0; ty < th; ty++) {
    for (let tx = 0; tx < tw; tx++) out[(oy + ty) * SIDE + ox + tx] = Math.min(1, Math.max(0, box[ty * tw + tx]));
  }
  return true;
}

class DrawBox extends ComponentView {
  constructor(root) {
    super(root);
    this.input = this.el("canvas.draw-input");
    this.ink = this.input.getContext("2d", {willReadFrequently: true});
    this.modelInput = this.el("canvas.draw-model-input");
    this.recon = this.el("canvas.draw-reconstruction");
    this.mapBg = this.el("canvas.draw-map-bg");
    this.map = this.el("canvas.draw-map");
    this.tool = "pen";
    this.drawing = false;
    this.last = null;
    this.x = new Float64Array(SIDE * SIDE);
    this.box = new Float64Array(BOX * BOX);
    this.has = false;
    this.modelId = null;
    this.enc = null;
    this.dec = null;
    this.mu = null;
    this.logvar = null;
    this.inputImage = this.modelInput.getContext("2d").createImageData(SIDE, SIDE);
    this.bind();
  }

  update(data, setStateValue, setTriggerValue) {
    this.setStateValue = setStateValue;
    try {
      if (data.encoder) remember(LD.encoders, data.model_id, compileEncoder(data.encoder), DRAW_MAX_CACHED);
      if (data.decoder) remember(LD.decoders, data.model_id, compileDecoder(data.decoder), DRAW_MAX_CACHED);
    } catch (err) {
      this.status(`The browser cannot run this model (${err.message}).`, true);
      return;
    }
    const enc = LD.encoders.get(data.model_id);
    const dec = LD.decoders.get(data.model_id) ?? window.__latentLab?.decoders?.get(data.model_id);
    if (!enc || !dec) {
      this.status("Loading the model\u2026");
      askOnce(this.asked, {model_id: data.model_id, encoder: !enc, decoder: !dec}, setTriggerValue);
      return;
    }
    const switched = data.model_id !== this.modelId;
    this.modelId = data.model_id;
    this.enc = enc;
    this.dec = dec;
    this.y = dec.numClasses ? Math.min(Math.max(data.y ?? 0, 0), dec.numClasses - 1) : null;
    if (switched) {
      this.recon.width = dec.width;
      this.recon.height = dec.height;
      this.reconImage = this.recon.getContext("2d").createImageData(dec.width, dec.height);
    }
    this.scene = data.scene;
    this.drawMapBackground();
    this.status(`Encoding and decoding in your browser \u00b7 ${(enc.nParameters + dec.nParameters).toLocaleString("en")} weights`);
    this.refresh(null);
  }

  // -- input --------------------------------------------------------------------------------------------------
  bind() {
    const c = this.input;
    const at = (ev) => {
      const r = c.getBoundingClientRect();
      return [(ev.clientX - r.left) * (c.width / r.width), (ev.clientY - r.top) * (c.height / r.height)];
    };
    c.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      const t0 = performance.now();
      LD.active = this;
      this.drawing = true;
      c.setPointerCapture(ev.pointerId);
      const p = at(ev);
      this.stroke(p, p);
      this.last = p;
      this.refresh("pointerdown", t0, ev.timeStamp);
    });
    c.addEventListener("pointermove", (ev) => {
      if (!this.drawing) return;
      const t0 = performance.now();
      const p = at(ev);
      this.stroke(this.last, p);
      this.last = p;
      this.refresh("pointermove", t0, ev.timeStamp);
    });
    onPointerEnd(c, () => {
      if (!this.drawing) return;
      this.drawing = false;
      this.send();
    });
    this.root.querySelectorAll(".tool").forEach((b) => b.addEventListener("click", () => {
      this.tool = b.dataset.tool;
      this.root.querySelectorAll(".tool").forEach((o) => o.classList.toggle("selected", o === b));
    }));
    this.el(".clear").addEventListener("click", () => {
      this.ink.clearRect(0, 0, c.width, c.height);
      LD.active = this;
      this.refresh("clear");
    });
  }

  stroke(a, b) {
    const ctx = this.ink, scale = this.input.width / SIDE;
    ctx.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = (this.tool === "eraser" ? ERASER_PX : PEN_PX) * scale;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0] + (a[0] === b[0] && a[1] === b[1] ? 0.01 : 0), b[1]);
    ctx.stroke();
    ctx.globalCompositeOperation = "source-over";
  }

  // -- encode, decode, paint: in the event handler, so both views are on screen in the next frame ----------------
  refresh(kind, t0 = performance.now(), tEvent = null) {
    if (!this.enc || !this.dec) return;
    const size = this.input.width;
    this.has = preprocess(this.ink.getImageData(0, 0, size, size).data, size, this.x, this.box);
    this.paintInput();
    if (this.has) {
      const {mu, logvar} = this.enc.encode(this.x, this.y);
      this.mu = Float64Array.from(mu);
      this.logvar = logvar && Float64Array.from(logvar);
      paintImage(this.dec, this.dec.decode(this.mu, this.y), this.reconImage);
    } else {
      this.mu = this.logvar = null;
      this.reconImage.data.fill(0);
      for (let i = 3; i < this.reconImage.data.length; i += 4) this.reconImage.data[i] = 255;
    }
    this.recon.getContext("2d").putImageData(this.reconImage, 0, 0);
    this.drawEllipse();
    const t1 = performance.now();
    LD.updates++;
    if (!LD.active) LD.active = this;
    this.readout();
    this.el(".timing").textContent = this.has ? `${(t1 - t0).toFixed(1)} ms to encode, decode and paint` : "";
    if (kind === "pointermove" || kind === "pointerdown") {
      logLatency(LD.latency, this.pendingFrame, {kind, tEvent, t0, t1, frame: null}, DRAW_MAX_LATENCY);
    }
  }

  paintInput() {
    const px = this.inputImage.data;
    for (let p = 0; p < SIDE * SIDE; p++) {
      const v = quantise(this.x[p]);
      px[p * 4] = v; px[p * 4 + 1] = v; px[p * 4 + 2] = v; px[p * 4 + 3] = 255;
    }
    this.modelInput.getContext("2d").putImageData(this.inputImage, 0, 0);
  }

  readout() {
    const el = this.el(".readout");
    if (!this.mu) {
      el.textContent = "Draw a digit on the black square.";
      return;
    }
    const [i, j] = this.scene.dims;
    const sd = (d) => (this.logvar ? Math.exp(0.5 * this.logvar[d]) : 0);
    const part = (d) => `z[${d}] = ${fmt(this.mu[d])}` + (this.logvar ? ` \u00b1 ${sd(d).toFixed(2)}` : "");
    el.textContent = this.mu.length <= 2 ? `${part(i)}, ${part(j)}`
      : `${part(i)}, ${part(j)} (the two most informative of ${this.mu.length} numbers)`;
  }

  // -- the map ------------------------------------------------------------------------------------------------
  mapSize() {
    return this.map.clientWidth || 240;
  }

  toMap(u, v) {
    const [x0, x1, y0, y1] = this.scene.extent, s = this.mapSize();
    return [((u - x0) / (x1 - x0)) * s, ((y1 - v) / (y1 - y0)) * s];
  }

  drawMapBackground() {
    const s = this.mapSize(), dpr = window.devicePixelRatio || 1, sc = this.scene;
    for (const c of [this.mapBg, this.map]) {
      c.width = Math.round(s * dpr);
      c.height = Math.round(s * dpr);
    }
    const ctx = this.mapBg.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#f0f2f6";
    ctx.fillRect(0, 0, s, s);
    const [ox, oy] = this.toMap(0, 0);
    ctx.strokeStyle = "rgba(49,51,63,0.3)";
    ctx.beginPath(); ctx.moveTo(ox, 0); ctx.lineTo(ox, s); ctx.moveTo(0, oy); ctx.lineTo(s, oy); ctx.stroke();
    if (sc.points) drawPoints(ctx, sc.points, sc.palette, (u, v) => this.toMap(u, v), 2);
    drawAxisLabels(ctx, sc.axis_labels, s, "#31333f");
    this.map.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
  }

  drawEllipse() {
    const ctx = this.map.getContext("2d"), s = this.mapSize();
    ctx.clearRect(0, 0, s, s);
    if (!this.mu || !this.scene) return;
    const [i, j] = this.scene.dims, [x0, x1, y0, y1] = this.scene.extent;
    const [cx, cy] = this.toMap(this.mu[i], this.mu[j]);
    if (this.logvar) {
      const rx = (Math.exp(0.5 * this.logvar[i]) / (x1 - x0)) * s, ry = (Math.exp(0.5 * this.logvar[j]) / (y1 - y0)) * s;
      ctx.fillStyle = "rgba(255,75,75,0.25)";
      ctx.strokeStyle = "#ff4b4b";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.ellipse(cx, cy, Math.max(rx, 1), Math.max(ry, 1), 0, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
    ctx.fillStyle = "#111827";
    ctx.beginPath();
    ctx.arc(cx, cy, 3, 0, 2 * Math.PI);
    ctx.fill();
  }

  send() {
    if (!this.mu) return;
    LD.sendSeq = Math.max((LD.sendSeq ?? 0) + 1, Date.now());
    this.setStateValue?.("code", {
      model_id: this.modelId, mu: Array.from(this.mu), logvar: this.logvar && Array.from(this.logvar),
      x: Array.from(this.x, (v) => Math.round(v * 1000) / 1000), y: this.y, seq: LD.sendSeq,
    });
  }

  status(text, isError = false) {
    showStatus(this.el(".status"), text, isError);
  }
}

export default function (component) {
  return mountOnce(component, "__drawBox", (root) => new DrawBox(root), (box) => {
    if (LD.active === box) LD.active = null;
  });
}
