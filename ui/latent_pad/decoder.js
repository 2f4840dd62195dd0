// Latent Lab's in-browser decoder: runs a decoder exported by vae_core/export.py (browser_payload) on
// typed arrays, with no library. Linear and ConvTranspose2d both run in scatter form over their non-zero inputs
// (after a ReLU many are exactly 0): Linear adds each input times its weight column into the outputs;
// ConvTranspose2d, on channels-last activations, adds each input pixel's values times the kernel into the output
// window the pixel maps to. Every buffer is allocated once when the decoder is compiled: a decode allocates
// nothing.
//
//   const dec = compileDecoder(payload);        // throws on a layer type it does not know
//   const img = dec.decode(z, y);               // Float64Array (C*H*W, CHW order) in [0, 1]; y: class or null
//   paintImage(dec, img, imageData);            // RGBA bytes, quantised exactly like vae_core.latent.image_grid

function b64ToFloat32(text) {
  const bin = atob(text);
  const n = bin.length;
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer); // little-endian, as every browser platform is
}

// Linear in scatter form over the non-zero inputs, W stored transposed (in, out) as float64: out = b, then
// out += x[i] * W[:, i] for every x[i] != 0. After a ReLU many inputs are exactly 0 and cost nothing, and the inner
// loop walks arrays in order with no dependency between its steps. Four inputs per pass over `out` (a quarter of
// its loads and stores). Every output is still b + the sum of W[o, i] * x[i] in float64; only the grouping of the
// additions differs from a plain dot product (round-off of order 1e-16).
function linearStep(W32, b, nIn, nOut) {
  const WT = new Float64Array(nIn * nOut); // (in, out)
  for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i++) WT[i * nOut + o] = W32[o * nIn + i];
  const out = new Float64Array(nOut);
  const nz = new Int32Array(nIn);
  return (x) => {
    let n = 0;
    for (let i = 0; i < nIn; i++) if (x[i] !== 0) nz[n++] = i;
    for (let o = 0; o < nOut; o++) out[o] = b[o];
    let t = 0;
    for (; t + 3 < n; t += 4) {
      const i1 = nz[t], i2 = nz[t + 1], i3 = nz[t + 2], i4 = nz[t + 3];
      const v1 = x[i1], v2 = x[i2], v3 = x[i3], v4 = x[i4];
      const b1 = i1 * nOut, b2 = i2 * nOut, b3 = i3 * nOut, b4 = i4 * nOut;
      for (let o = 0; o < nOut; o++) {
        out[o] += (v1 * WT[b1 + o] + v2 * WT[b2 + o]) + (v3 * WT[b3 + o] + v4 * WT[b4 + o]);
      }
    }
    for (; t < n; t++) {
      const i = nz[t], v = x[i], base = i * nOut;
      for (let o = 0; o < nOut; o++) out[o] += v * WT[base + o];
    }
    return out;
  };
}

function reluStep() {
  return (x) => {
    for (let i = 0, n = x.length; i < n; i++) if (x[i] < 0) x[i] = 0;
    return x;
  };
}

function sigmoidStep() {
  return (x) => {
    for (let i = 0, n = x.length; i < n; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
    return x;
  };
}

function chwToHwcStep(c, h, w) {
  const out = new Float64Array(c * h * w);
  return (x) => {
    for (let ch = 0; ch < c; ch++) {
      const src = ch * h * w;
      for (let p = 0; p < h * w; p++) out[p * c + ch] = x[src + p];
    }
    return out;
  };
}

function hwcToChwStep(c, h, w) {
  const out = new Float64Array(c * h * w);
  return (x) => {
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < c; ch++) out[ch * h * w + p] = x[p * c + ch];
    }
    return out;
  };
}

// ConvTranspose2d, weight (Ci, Co, kh, kw) as PyTorch stores it; input and output channels-last. For each input
// pixel, its non-zero channels are accumulated into one (kh, kw, Co) patch (a long contiguous loop), and the patch
// is then added into the output window the pixel maps to, clipped by the padding.
function convTransposeStep(L) {
  const [ci, h, w] = L.in_shape;
  const [co, oh, ow] = L.out_shape;
  const [kh, kw] = L.kernel, [sh, sw] = L.stride, [ph, pw] = L.padding;
  const src = b64ToFloat32(L.weight), bias = b64ToFloat32(L.bias);
  const K = kh * kw * co;
  const W = new Float64Array(ci * K); // (Ci, kh, kw, Co)
  for (let a = 0; a < ci; a++)
    for (let o = 0; o < co; o++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++)
          W[a * K + (ky * kw + kx) * co + o] = src[((a * co + o) * kh + ky) * kw + kx];
  const out = new Float64Array(oh * ow * co);
  const patch = new Float64Array(K);
  const nonZero = new Int32Array(ci);
  const even = K - (K % 2);
  return (x) => {
    for (let p = 0; p < oh * ow; p++) {
      const base = p * co;
      for (let o = 0; o < co; o++) out[base + o] = bias[o];
    }
    for (let iy = 0; iy < h; iy++) {
      for (let ix = 0; ix < w; ix++) {
        const ib = (iy * w + ix) * ci;
        let n = 0;
        for (let a = 0; a < ci; a++) if (x[ib + a] !== 0) nonZero[n++] = a; // after a ReLU many are exactly 0
        if (n === 0) continue;
        patch.fill(0);
        // Two input channels per pass over the patch (half the patch loads and stores), two taps per step.
        let t = 0;
        for (; t + 1 < n; t += 2) {
          const a1 = nonZero[t], a2 = nonZero[t + 1];
          const v1 = x[ib + a1], v2 = x[ib + a2], w1 = a1 * K, w2 = a2 * K;
          let j = 0;
          for (; j < even; j += 2) {
            patch[j] += v1 * W[w1 + j] + v2 * W[w2 + j];
            patch[j + 1] += v1 * W[w1 + j + 1] + v2 * W[w2 + j + 1];
          }
          if (j < K) patch[j] += v1 * W[w1 + j] + v2 * W[w2 + j];
        }
        if (t < n) {
          const a1 = nonZero[t], v1 = x[ib + a1], w1 = a1 * K;
          for (let j = 0; j < K; j++) patch[j] += v1 * W[w1 + j];
        }
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * sh - ph + ky;
          if (oy < 0 || oy >= oh) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * sw - pw + kx;
            if (ox < 0 || ox >= ow) continue;
            const ob = (oy * ow + ox) * co, pb = (ky * kw + kx) * co;
            for (let o = 0; o < co; o++) out[ob + o] += patch[pb + o];
          }
        }
      }
    }
    return out;
  };
}

function compileDecoder(payload) {
  if (payload.format !== "latent-lab-decoder" || payload.version !== 1) {
    throw new Error("not a latent-lab-decoder v1 payload");
  }
  const latentDim = payload.latent_dim, numClasses = payload.num_classes;
  const steps = [];
  let layout = "flat"; // flat | chw | hwc
  let shape = [latentDim + numClasses];
  for (const L of payload.layers) {
    switch (L.type) {
      case "linear":
        if (layout === "hwc") steps.push(hwcToChwStep(...shape));
        layout = "flat";
        steps.push(linearStep(b64ToFloat32(L.weight), b64ToFloat32(L.bias), L.in, L.out));
        shape = [L.out];
        break;
      case "relu":
        steps.push(reluStep());
        break;
      case "unflatten":
        layout = "chw";
        shape = L.shape.slice();
        break;
      case "conv_transpose2d":
        if (layout !== "hwc") steps.push(chwToHwcStep(...L.in_shape));
        layout = "hwc";
        steps.push(convTransposeStep(L));
        shape = L.out_shape.slice();
        break;
      case "sigmoid":
        if (layout === "hwc") steps.push(hwcToChwStep(...shape));
        layout = "chw";
        steps.push(sigmoidStep());
        break;
      default:
        throw new Error(`the browser decoder does not know the layer type ${L.type}`);
    }
  }
  const input = new Float64Array(latentDim + numClasses);
  const [c, h, w] = payload.output_shape;
  return {
    latentDim, numClasses, channels: c, height: h, width: w, nParameters: payload.n_parameters,
    decode(z, y) {
      for (let i = 0; i < latentDim; i++) input[i] = Math.fround(z[i]); // the model's float32 inputs
      for (let k = 0; k < numClasses; k++) input[latentDim + k] = k === y ? 1 : 0;
      let x = input;
      for (const step of steps) x = step(x);
      return x;
    },
  };
}

// torch: (x.clamp(0, 1) * 255).round().to(uint8) in float32, round half to even.
function quantise(v) {
  const t = Math.fround(Math.fround(v < 0 ? 0 : v > 1 ? 1 : v) * 255);
  let r = Math.round(t);
  if (r - t === 0.5 && (r & 1) === 1) r -= 1; // Math.round takes .5 up; torch takes it to the even neighbour
  return r;
}

function paintImage(dec, img, imageData) {
  const px = imageData.data, n = dec.height * dec.width;
  for (let p = 0; p < n; p++) {
    const q = p * 4;
    if (dec.channels === 1) {
      const v = quantise(img[p]);
      px[q] = v; px[q + 1] = v; px[q + 2] = v;
    } else {
      px[q] = quantise(img[p]); px[q + 1] = quantise(img[n + p]); px[q + 2] = quantise(img[2 * n + p]);
    }
    px[q + 3] = 255;
  }
}
