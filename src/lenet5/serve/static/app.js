// The drawing page of `lenet5 serve`: plain JavaScript, no build step.
// Draw on the pad (Pointer Events: mouse, pen, touch); while drawing the pad is sent as a
// PNG to POST /api/predict at most every THROTTLE_MS, and once more when the stroke ends.
"use strict";

const THROTTLE_MS = 250;
const INK_WIDTH = 20; // px on the 280 px pad: about MNIST's stroke once scaled to 20x20

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const $ = (id) => document.getElementById(id);

let hasInk = false;      // something drawn (or uploaded) on the pad
let uploaded = null;     // the uploaded File, while the pad shows it
let drawing = false;
let last = null;         // last pointer position
let inFlight = false, pending = false, lastSent = 0, timer = null, seq = 0;

// ---- the pad ---------------------------------------------------------------------------
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  uploaded = null;
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) * (pad.width / r.width), y: (e.clientY - r.top) * (pad.height / r.height) };
}

function stroke(from, to) {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = INK_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (e) => {
  if (e.button !== undefined && e.button > 0) return;
  e.preventDefault();
  if (uploaded) clearPad();
  pad.setPointerCapture(e.pointerId);
  drawing = true;
  last = point(e);
  stroke(last, last); // a dot
  hasInk = true;
  schedule();
});

pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const ev of events.length ? events : [e]) {
    const p = point(ev);
    stroke(last, p);
    last = p;
  }
  schedule();
});

function endStroke() {
  if (!drawing) return;
  drawing = false;
  schedule(true);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
pad.addEventListener("lostpointercapture", endStroke);

$("clear").addEventListener("click", () => {
  clearPad();
  seq++; // drop answers still on their way
  showEmpty();
});

$("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  clearPad();
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    const s = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * s, h = img.height * s;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  img.onerror = () => URL.revokeObjectURL(url);
  img.src = url;
  uploaded = file;
  hasInk = true;
  schedule(true);
});

$("model").addEventListener("change", () => { if (hasInk) schedule(true); });

// ---- talking to the API ----------------------------------------------------------------
// At most one request in flight; at most one every THROTTLE_MS; the newest drawing wins.
// body[data-state]: "busy" until the answer to the latest drawing is shown, then "ready".
function schedule(now = false) {
  pending = true;
  document.body.dataset.state = "busy";
  if (inFlight) return;
  const wait = now ? 0 : Math.max(0, lastSent + THROTTLE_MS - performance.now());
  clearTimeout(timer);
  timer = setTimeout(send, wait);
}

async function send() {
  if (!pending || inFlight) return;
  pending = false;
  if (!hasInk) { document.body.dataset.state = "empty"; return; }
  inFlight = true;
  lastSent = performance.now();
  const mine = ++seq;
  try {
    const body = new FormData();
    const blob = uploaded || await new Promise((ok) => pad.toBlob(ok, "image/png"));
    body.append("file", blob, uploaded ? uploaded.name : "pad.png");
    const model = $("model").value;
    if (model) body.append("model", model);
    const res = await fetch("/api/predict?activations=true", { method: "POST", body });
    const data = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
    if (mine !== seq) return; // cleared meanwhile
    if (res.ok) show(data);
    else status(data.detail || `HTTP ${res.status}`, true);
    if (!pending) document.body.dataset.state = res.ok ? "ready" : "error";
  } catch (err) {
    status(`cannot reach the server (${err.message})`, true);
    document.body.dataset.state = "error";
  } finally {
    inFlight = false;
    if (pending) schedule();
  }
}

function status(text, bad = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("bad", bad);
}

// ---- showing the answer ----------------------------------------------------------------
const bars = [];
for (let d = 0; d < 10; d++) {
  const col = document.createElement("div");
  col.className = "bar";
  col.innerHTML = `<span class="pct"></span><div class="track"><div class="fill"></div></div><span class="lbl">${d}</span>`;
  $("bars").appendChild(col);
  bars.push(col);
}

function showEmpty() {
  $("digit").textContent = "?";
  $("digit").classList.remove("sure");
  $("confidence").textContent = "draw something";
  bars.forEach((b) => { b.classList.remove("top"); b.querySelector(".fill").style.height = "0%"; b.querySelector(".pct").textContent = ""; });
  status("mouse, pen or finger");
  drawGrey($("seen"), [new Array(28).fill(0).map(() => new Array(28).fill(0))], 0, 255, 0, 255);
  document.querySelectorAll(".layer:not(.input)").forEach((el) => el.remove());
  document.body.dataset.state = "empty";
}

function show(data) {
  const p = data.probabilities;
  const best = data.label;
  $("digit").textContent = data.class;
  $("digit").classList.toggle("sure", p[best] >= 0.9);
  $("confidence").textContent = `${(100 * p[best]).toFixed(p[best] > 0.995 ? 1 : 0)}% sure`;
  $("modelname").textContent = data.model;
  bars.forEach((b, d) => {
    b.classList.toggle("top", d === best);
    b.querySelector(".fill").style.height = `${(100 * (p[d] || 0)).toFixed(1)}%`;
    b.querySelector(".pct").textContent = p[d] >= 0.01 ? Math.round(100 * p[d]) : "";
  });
  drawGrey($("seen"), [data.input], 0, 255, 0, 255);
  showLayers(data.activations || [], p, best);
  status(uploaded ? `read ${uploaded.name}` : "reading as you write");
}

// One column per layer, like the 1993 demo; the output column lights each class.
function showLayers(layers, probs, best) {
  const host = $("layers");
  const wanted = layers.map((l) => l.layer).concat(["out"]);
  host.querySelectorAll(".layer:not(.input)").forEach((el) => { if (!wanted.includes(el.dataset.layer)) el.remove(); });
  for (const l of layers) {
    let fig = host.querySelector(`.layer[data-layer="${l.layer}"]`);
    const [n, h, w] = l.shape;
    if (!fig) {
      fig = document.createElement("figure");
      fig.className = `layer ${n > 8 ? "two" : ""}`;
      fig.dataset.layer = l.layer;
      fig.innerHTML = `<figcaption>${l.layer}<small>${n}@${h}&times;${w}</small></figcaption><div class="maps"></div>`;
      const maps = fig.querySelector(".maps");
      for (let i = 0; i < n; i++) {
        const c = document.createElement("canvas");
        c.className = "map";
        c.width = w; c.height = h;
        const size = Math.max(30, Math.min(48, Math.round(3.6 * h))); // display px: small maps scaled up more
        c.style.width = `${size}px`;
        c.style.height = `${Math.round(size * h / w)}px`;
        maps.appendChild(c);
      }
      host.insertBefore(fig, host.querySelector('.layer[data-layer="out"]'));
    }
    // Grey levels as the demo showed them: signed layers around mid-grey, others from black.
    const m = Math.max(Math.abs(l.min), Math.abs(l.max)) || 1;
    const [lo, hi] = l.min < 0 ? [-m, m] : [0, l.max || 1];
    fig.querySelectorAll("canvas").forEach((c, i) => drawGrey(c, [l.maps[i]], lo, hi));
  }
  let out = host.querySelector('.layer[data-layer="out"]');
  if (!out) {
    out = document.createElement("figure");
    out.className = "layer output";
    out.dataset.layer = "out";
    out.innerHTML = `<figcaption>Output<small>${probs.length}</small></figcaption><div class="cells"></div>`;
    for (let d = 0; d < probs.length; d++) out.querySelector(".cells").insertAdjacentHTML("beforeend", `<div class="cell">${d}</div>`);
    host.appendChild(out);
  }
  out.querySelectorAll(".cell").forEach((c, d) => {
    const v = Math.round(255 * Math.sqrt(probs[d] || 0));
    c.style.background = `rgb(${v},${v},${v})`;
    c.style.color = v > 140 ? "#000" : "#8a93a6";
    c.classList.toggle("top", d === best);
  });
}

function drawGrey(canvas, planes, lo, hi) {
  const rows = planes[0];
  const h = rows.length, w = rows[0].length;
  const g = canvas.getContext("2d");
  const img = g.createImageData(w, h);
  const scale = 255 / (hi - lo || 1);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = Math.max(0, Math.min(255, (rows[y][x] - lo) * scale));
      const k = 4 * (y * w + x);
      img.data[k] = img.data[k + 1] = img.data[k + 2] = v;
      img.data[k + 3] = 255;
    }
  }
  g.putImageData(img, 0, 0);
}

// ---- start -----------------------------------------------------------------------------
async function loadModels() {
  try {
    const res = await fetch("/api/models");
    const data = await res.json();
    const sel = $("model");
    for (const m of data.models) {
      const acc = m.test_accuracy == null ? "" : ` · ${(100 * m.test_accuracy).toFixed(2)}%`;
      sel.add(new Option(`${m.id} (${m.model}${acc})`, m.id));
    }
    sel.value = data.default;
    $("picker").hidden = data.models.length < 2;
    $("modelname").textContent = data.default;
  } catch (err) {
    status(`cannot reach the server (${err.message})`, true);
  }
}

clearPad();
showEmpty();
loadModels();
