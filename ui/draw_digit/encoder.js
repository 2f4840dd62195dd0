// Latent Lab's in-browser encoder: runs an encoder exported by vae_core/export.py (encoder_payload) on typed arrays,
// with no library: Conv2d (scatter form, zero padding) and ReLU on the image, then the flattened
// features [+ the one-hot class of a CVAE] through Linear and ReLU layers (decoder.js's linearStep: scatter form
// over the non-zero inputs, so the mostly-black pixels of a drawing cost nothing), then the mean and log-variance
// heads. Every buffer is allocated once when the encoder is compiled.
//
//   const enc = compileEncoder(payload);   // throws on a layer type it does not know
//   const {mu, logvar} = enc.encode(x, y); // x: C*H*W values in [0, 1] (CHW order); Float64Arrays (logvar null
//                                          // for a deterministic model); y: class or null

// Conv2d in scatter form over the non-zero inputs (a drawing is mostly black, and after a ReLU many activations are
// exactly 0): every non-zero input pixel adds its value times the kernel taps into the outputs it reaches, with the
// output channels-last so the innermost loop is contiguous; then back to channels-first (PyTorch's flatten order).
// Every output is still the bias plus the sum of W * x in float64; only the order of the additions differs.
function conv2dStep(L) {
  const [ci, h, w] = L.in_shape;
  const [co, oh, ow] = L.out_shape;
  const [kh, kw] = L.kernel, [sh, sw] = L.stride, [ph, pw] = L.padding;
  const W32 = b64ToFloat32(L.weight), bias = b64ToFloat32(L.bias);
  const W = new Float64Array(ci * kh * kw * co); // (Ci, kh, kw, Co)
  for (let o = 0; o < co; o++)
    for (let a = 0; a < ci; a++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++) W[((a * kh + ky) * kw + kx) * co + o] = W32[((o * ci + a) * kh + ky) * kw + kx];
  const hwc = new Float64Array(oh * ow * co);
  const out = new Float64Array(co * oh * ow);
  return (x) => {
    for (let p = 0; p < oh * ow; p++) for (let o = 0; o < co; o++) hwc[p * co + o] = bias[o];
    for (let a = 0; a < ci; a++) {
      for (let iy = 0; iy < h; iy++) {
        for (let ix = 0; ix < w; ix++) {
          const v = x[(a * h + iy) * w + ix];
          if (v === 0) continue;
          for (let ky = 0; ky < kh; ky++) {
            const ty = iy + ph - ky;
            if (ty < 0 || ty % sh !== 0) continue;
            const oy = ty / sh;
            if (oy >= oh) continue;
            for (let kx = 0; kx < kw; kx++) {
              const tx = ix + pw - kx;
              if (tx < 0 || tx % sw !== 0) continue;
              const ox = tx / sw;
              if (ox >= ow) continue;
              const ob = (oy * ow + ox) * co, wb = ((a * kh + ky) * kw + kx) * co;
              for (let o = 0; o < co; o++) hwc[ob + o] += v * W[wb + o];
            }
          }
        }
      }
    }
    for (let p = 0; p < oh * ow; p++) for (let o = 0; o < co; o++) out[o * oh * ow + p] = hwc[p * co + o];
    return out;
  };
}

function compileEncoder(payload) {
  if (payload.format !== "latent-lab-encoder" || payload.version !== 1) {
    throw new Error("not a latent-lab-encoder v1 payload");
  }
  const [c, h, w] = payload.input_shape;
  const numClasses = payload.num_classes, latentDim = payload.latent_dim;
  const convSteps = [];
  let features = c * h * w;
  for (const L of payload.conv) {
    if (L.type === "conv2d") {
      convSteps.push(conv2dStep(L));
      features = L.out_shape[0] * L.out_shape[1] * L.out_shape[2];
    } else if (L.type === "relu") {
      convSteps.push(reluStep());
    } else if (L.type !== "flatten") {
      throw new Error(`the browser encoder does not know the layer type ${L.type}`);
    }
  }
  const bodySteps = payload.body.map((L) => {
    if (L.type === "linear") return linearStep(b64ToFloat32(L.weight), b64ToFloat32(L.bias), L.in, L.out);
    if (L.type === "relu") return reluStep();
    throw new Error(`the browser encoder does not know the layer type ${L.type}`);
  });
  const head = (L) => L && linearStep(b64ToFloat32(L.weight), b64ToFloat32(L.bias), L.in, L.out);
  const muStep = head(payload.mu), logvarStep = head(payload.logvar);
  const input = new Float64Array(c * h * w);
  const joined = new Float64Array(features + numClasses);
  return {
    latentDim, numClasses, channels: c, height: h, width: w, nParameters: payload.n_parameters,
    encode(x, y = null) {
      for (let i = 0; i < input.length; i++) input[i] = Math.fround(x[i]); // the model's float32 inputs
      let t = input;
      for (const step of convSteps) t = step(t);
      joined.set(t.subarray(0, features));
      for (let k = 0; k < numClasses; k++) joined[features + k] = k === y ? 1 : 0;
      t = joined;
      for (const step of bodySteps) t = step(t);
      return {mu: muStep(t), logvar: logvarStep ? logvarStep(t) : null};
    },
  };
}
