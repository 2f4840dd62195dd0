// What the app's st.components.v2 components (the latent pad, the drawing box) share. ui/components.py puts this
// file first in each component's one ES module, so every name below is private to that module.

// Keep `value` under `key` as the most recent entry of `map`, dropping the oldest beyond `limit` (weights are large).
function remember(map, key, value, limit) {
  map.delete(key);
  map.set(key, value);
  while (map.size > limit) map.delete(map.keys().next().value);
}

// A number as the pages print it: two decimals and a true minus sign.
function fmt(v) {
  return (v < 0 ? "\u2212" : "") + Math.abs(v).toFixed(2);
}

// One handler for every way a drag ends: the button released, the pointer cancelled, the capture lost.
function onPointerEnd(target, handler) {
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) target.addEventListener(type, handler);
}

// Ask Python (the one-shot trigger `need`) for what this page lacks, once per distinct request: a rerun that still
// lacks it must not ask again and again.
function askOnce(asked, need, setTriggerValue) {
  const token = JSON.stringify(need);
  if (asked.has(token)) return;
  asked.add(token);
  setTriggerValue("need", need);
}

// Log one input's timing {kind, t0, t1, frame, ...} (the last `max` kept) and stamp `frame` with the start of the
// next animation frame, when what the handler painted is on screen. `pending`: the instance's entries awaiting it.
function logLatency(log, pending, entry, max) {
  log.push(entry);
  if (log.length > max) log.splice(0, log.length - max);
  pending.push(entry);
  if (pending.length > 1) return; // a frame is requested already
  requestAnimationFrame(() => {
    const now = performance.now();
    for (const e of pending) e.frame = now;
    pending.length = 0;
  });
}

// The test-set points, faint, coloured by label with the latent map's palette; `toXY` maps a point to pixels.
function drawPoints(ctx, points, palette, toXY, size) {
  ctx.globalAlpha = 0.45;
  for (let k = 0; k < points.x.length; k++) {
    const [px, py] = toXY(points.x[k], points.y[k]);
    const label = points.label ? points.label[k] : 0;
    ctx.fillStyle = palette[((label % palette.length) + palette.length) % palette.length];
    ctx.fillRect(px - size / 2, py - size / 2, size, size);
  }
  ctx.globalAlpha = 1;
}

// The two axis names of a square plot `s` pixels wide: along the bottom, and up the left side.
function drawAxisLabels(ctx, labels, s, color) {
  ctx.fillStyle = color;
  ctx.font = "11px sans-serif";
  ctx.fillText(`${labels[0]} \u2192`, 6, s - 6);
  ctx.save();
  ctx.translate(12, s - 8 - ctx.measureText(labels[0]).width - 20);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(`${labels[1]} \u2192`, 0, 0);
  ctx.restore();
}

function showStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// The component's entry point: one instance per element (kept on it as `prop`), updated with every run's data.
// Streamlit may call the cleanup while the element stays (a newer render won a race): tear down only when gone.
function mountOnce(component, prop, create, destroy = () => {}) {
  const {data, parentElement, setStateValue, setTriggerValue} = component;
  let instance = parentElement[prop];
  if (!instance) instance = parentElement[prop] = create(parentElement);
  instance.update(data ?? {}, setStateValue, setTriggerValue);
  return () => {
    setTimeout(() => {
      const host = parentElement.host ?? parentElement;
      if (!host.isConnected && parentElement[prop] === instance) {
        destroy(instance);
        delete parentElement[prop];
      }
    }, 0);
  };
}

// What every component's view starts with: its root element, a query helper scoped to it, the model parts already
// asked of Python (askOnce) and the pointer events waiting for their animation frame (logLatency).
class ComponentView {
  constructor(root) {
    this.root = root;
    this.el = (sel) => root.querySelector(sel);
    this.asked = new Set();
    this.pendingFrame = [];
  }
}
