// The drawing page of `lenet5 serve`: plain JavaScript, no build step.
// Draw on the pad (Pointer Events: mouse, pen, touch). Digit mode: while drawing the pad is
// sent as a PNG to POST /api/predict at most every THROTTLE_MS, and once more when the
// stroke ends. Number mode (served readers): a wide pad, sent to POST /api/read once the
// pen has rested DEBOUNCE_MS (between strokes, between digits); the reading, each digit's
// box on the pad and the output strip under it.
"use strict";

const THROTTLE_MS = 250;
const DEBOUNCE_MS = 350;
const INK_WIDTH = 20; // px on the 280 px high pad: about MNIST's stroke once scaled to 20x20
const PAD_WIDTH = { digit: 280, number: 840 };
const TASK = { digit: "classify", number: "read" };
const ENDPOINT = { digit: "/api/predict?activations=true", number: "/api/read" };

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const $ = (id) => document.getElementById(id);

let mode = "digit";
let served = { models: [], defaults: {} }; // GET /api/models
let hasInk = false;      // something drawn (or uploaded) on the pad
let uploaded = null;     // the uploaded File, while the pad shows it
let placed = { s: 1, x: 0, y: 0 }; // the image sent, in pad pixels: pad = image * s + (x, y)
let drawing = false;
let last = null;         // last pointer position
let inFlight = false, pending = false, lastSent = 0, timer = null, seq = 0;

// ---- the pad ---------------------------------------------------------------------------
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  uploaded = null;
  placed = { s: 1, x: 0, y: 0 };
  clearCanvas($("boxes"));
  clearCanvas($("strip"));
}

function clearCanvas(c) { c.getContext("2d").clearRect(0, 0, c.width, c.height); }

// ---- the modes ---------------------------------------------------------------------------
function setMode(m) {
  mode = m;
  document.body.dataset.mode = m;
  document.querySelectorAll("[data-for]").forEach((el) => { el.hidden = el.dataset.for !== m; });
  document.querySelectorAll("#modes button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === m)));
  for (const c of [pad, $("boxes")]) c.width = PAD_WIDTH[m];
  pad.setAttribute("aria-label", `drawing pad: draw a ${m} here`);
  fillPicker();
  clearPad();
  seq++; // drop answers still on their way
  showEmpty();
}

document.querySelectorAll("#modes button").forEach((b) => b.addEventListener("click", () => {
  if (b.dataset.mode !== mode) setMode(b.dataset.mode);
}));

function fillPicker() {
  const sel = $("model");
  const mine = served.models.filter((m) => m.task === TASK[mode]);
  sel.replaceChildren(...mine.map((m) => {
    const acc = m.test_accuracy == null ? "" : ` · ${(100 * m.test_accuracy).toFixed(2)}%`;
    return new Option(`${m.id} (${m.model}${acc})`, m.id);
  }));
  sel.value = served.defaults[TASK[mode]] || "";
  $("picker").hidden = mine.length < 2;
  $("modelname").textContent = sel.value;
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
    placed = { s, x: (pad.width - w) / 2, y: (pad.height - h) / 2 };
    ctx.drawImage(img, placed.x, placed.y, w, h);
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
// Number mode waits until the pen has rested DEBOUNCE_MS instead (debounced).
function schedule(now = false) {
  pending = true;
  document.body.dataset.state = "busy";
  if (inFlight) return;
  const wait = now ? 0 : mode === "number" ? DEBOUNCE_MS
    : Math.max(0, lastSent + THROTTLE_MS - performance.now());
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
  const asked = mode;
  try {
    const body = new FormData();
    const blob = uploaded || await new Promise((ok) => pad.toBlob(ok, "image/png"));
    body.append("file", blob, uploaded ? uploaded.name : "pad.png");
    const model = $("model").value;
    if (model) body.append("model", model);
    const res = await fetch(ENDPOINT[asked], { method: "POST", body });
    const data = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
    if (mine !== seq) return; // cleared meanwhile
    if (res.ok) (asked === "number" ? showReading : show)(data);
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
  $("reading").replaceChildren();
  clearCanvas($("line"));
  clearCanvas($("linestrip"));
  $("seensize").textContent = "";
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

// ---- number mode: the reading, the digits' boxes, the output strip -------------------------
function showReading(data) {
  const text = data.text || "–";
  $("digit").textContent = text;
  $("digit").classList.toggle("sure", data.confidence >= 0.9);
  $("digit").classList.toggle("long", text.length > 4);
  $("confidence").textContent = `${(100 * data.confidence).toFixed(data.confidence > 0.995 ? 1 : 0)}% sure`;
  $("modelname").textContent = data.model;
  $("reading").replaceChildren(...data.digits.map((d) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.innerHTML = `<b>${d.digit}</b><small>${Math.round(100 * d.probability)}%</small>`;
    return chip;
  }));
  drawBoxes(data.digits);
  drawStrip($("strip"), data.strip, (c) => (placed.x + c.x * placed.s) / pad.width);
  const rows = data.input, w = rows[0].length;
  const line = $("line");
  line.width = w; line.height = rows.length;
  line.style.width = `${Math.min(3 * w, 960)}px`;
  drawGrey(line, [rows], 0, 255);
  const ls = $("linestrip");
  ls.style.width = line.style.width;
  drawStrip(ls, data.strip, (c) => c.column / w);
  $("seensize").textContent = `32×${w}, a window every ${data.strip.length > 1 ? Math.round(data.strip[1].column - data.strip[0].column) : "?"} px`;
  status(uploaded ? `read ${uploaded.name}` : "reading as you write");
}

// Each digit's box, on a canvas over the pad (the pad itself holds only the ink sent).
function drawBoxes(digits) {
  const c = $("boxes"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = g.fillStyle = "#ffb224";
  g.lineWidth = 2;
  g.font = "bold 18px system-ui, sans-serif";
  for (const d of digits) {
    const [x0, y0, x1, y1] = d.box.map((v, i) => (i % 2 ? placed.y : placed.x) + v * placed.s);
    g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    g.fillText(String(d.digit), x0 + 3, Math.max(18, y0 - 4));
  }
}

// The output strip as the paper's SDNN figures draw it: at each position of the window,
// its best class (a digit, or a dot for "none"), brighter the more probable.
function drawStrip(c, strip, at) {
  const r = c.getBoundingClientRect(); // drawn at the size it is shown: text not stretched
  c.width = Math.max(1, Math.round(r.width * devicePixelRatio));
  c.height = Math.max(1, Math.round(r.height * devicePixelRatio));
  const g = c.getContext("2d");
  if (!strip.length) return;
  const step = strip.length > 1 ? Math.abs(at(strip[1]) - at(strip[0])) * c.width : 12;
  const w = Math.max(2, step - 1), h = c.height;
  g.textAlign = "center";
  g.textBaseline = "middle";
  g.font = `bold ${Math.round(Math.min(h * 0.6, Math.max(9, w * 1.1)))}px system-ui, sans-serif`;
  for (const cell of strip) {
    const x = at(cell) * c.width;
    const v = Math.round(40 + 215 * cell.probability);
    const none = cell.class === "none";
    g.fillStyle = none ? `rgb(${v >> 2},${v >> 2},${v >> 1})` : `rgb(${v},${Math.round(v * 0.7)},${v >> 3})`;
    g.fillRect(x - w / 2, 0, w, h);
    g.fillStyle = cell.probability > 0.5 && !none ? "#1a1204" : "#e8ebf1";
    g.fillText(none ? "·" : cell.class, x, h / 2);
  }
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
    served = await res.json();
    const tasks = new Set(served.models.map((m) => m.task));
    $("modes").hidden = tasks.size < 2;
    setMode(tasks.has("classify") ? "digit" : "number");
  } catch (err) {
    status(`cannot reach the server (${err.message})`, true);
  }
}

setMode("digit");
loadModels();
