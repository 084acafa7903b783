// ferkit web page: photo upload and webcam mode over the ferkit serve API. Plain JS, no build step.
"use strict";

const COLOURS = {  // the same colours as ferkit's annotated images (ferkit/pipeline/annotate.py)
  angry: "rgb(220,40,40)", disgust: "rgb(40,140,40)", fear: "rgb(160,60,160)", happy: "rgb(240,200,40)",
  sad: "rgb(40,120,200)", surprise: "rgb(250,160,40)", neutral: "rgb(170,170,170)",
};
const $ = (id) => document.getElementById(id);
const canvas = $("canvas"), ctx = canvas.getContext("2d");
const state = { labels: Object.keys(COLOURS), last: null, frames: 0 };
window.ferkit = state;  // for tests and the curious: the last answer and the webcam frame count

function setState(name) { document.body.dataset.state = name; }

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
  if (message) setState("error");
}

async function apiError(response) {
  try { return (await response.json()).error || `HTTP ${response.status}`; }
  catch { return `HTTP ${response.status}`; }
}

// ---- drawing ---------------------------------------------------------------------------------------
function drawFaces(faces, scale, useSmoothed) {
  const unit = Math.max(1, Math.min(canvas.width, canvas.height) / 480);
  ctx.textBaseline = "bottom";
  ctx.font = `${Math.round(14 * unit)}px system-ui, sans-serif`;
  faces.forEach((face, i) => {
    const probs = useSmoothed ? face.smoothed : face.probabilities;
    const [x, y, w, h] = face.box.map((v) => v * scale);
    const colour = COLOURS[face.emotion] || "white";
    ctx.lineWidth = 3 * unit;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    const who = face.track_id !== undefined ? `#${face.track_id} ` : `${i + 1}. `;
    const caption = `${who}${face.emotion} ${Math.round(Math.max(...Object.values(probs)) * 100)}%`;
    const tw = ctx.measureText(caption).width + 8 * unit, th = 20 * unit;
    const ty = y - th >= 0 ? y - th : y + h;
    ctx.fillStyle = colour;
    ctx.fillRect(x - ctx.lineWidth / 2, ty, tw, th);
    ctx.fillStyle = "black";
    ctx.fillText(caption, x + 4 * unit, ty + th - 3 * unit);
    // one bar per emotion beside the box (left of it when there is no room on the right)
    const barW = 70 * unit, barH = 9 * unit, gap = 3 * unit, labelW = 34 * unit;
    let left = x + w + 6 * unit;
    if (left + barW + labelW > canvas.width) left = Math.max(0, x - barW - labelW - 6 * unit);
    ctx.font = `${Math.round(10 * unit)}px system-ui, sans-serif`;
    state.labels.forEach((name, k) => {
      const by = y + k * (barH + gap);
      ctx.fillStyle = "rgba(40,40,40,0.75)";
      ctx.fillRect(left, by, barW + labelW, barH);
      ctx.fillStyle = COLOURS[name];
      ctx.fillRect(left, by, barW * probs[name], barH);
      ctx.fillStyle = "white";
      ctx.fillText(name.slice(0, 3), left + barW + 3 * unit, by + barH);
    });
    ctx.font = `${Math.round(14 * unit)}px system-ui, sans-serif`;
  });
}

function listFaces(faces, useSmoothed, summary) {
  $("summary").textContent = summary;
  const list = $("faces");
  list.replaceChildren(...faces.map((face) => {
    const probs = useSmoothed ? face.smoothed : face.probabilities;
    const li = document.createElement("li");
    li.dataset.emotion = face.emotion;
    const title = document.createElement("div");
    title.className = "face-title";
    const flags = [face.low_confidence && "low confidence", face.small && "small face"].filter(Boolean);
    title.textContent = (face.track_id !== undefined ? `track ${face.track_id}: ` : "") +
      `${face.emotion} (${(Math.max(...Object.values(probs)) * 100).toFixed(1)}%)` + (flags.length ? ` — ${flags.join(", ")}` : "");
    li.append(title);
    for (const name of state.labels) {
      const row = document.createElement("div"); row.className = "bar";
      const label = document.createElement("span"); label.textContent = name;
      const track = document.createElement("span"); track.className = "track";
      const fill = document.createElement("span"); fill.className = "fill";
      fill.style.display = "block"; fill.style.width = `${(probs[name] * 100).toFixed(1)}%`;
      fill.style.background = COLOURS[name];
      track.append(fill);
      const pct = document.createElement("span"); pct.className = "pct";
      pct.textContent = `${(probs[name] * 100).toFixed(1)}%`;
      row.append(label, track, pct);
      li.append(row);
    }
    return li;
  }));
}

// ---- photo mode ------------------------------------------------------------------------------------
async function classifyPhoto(file) {
  showError("");
  setState("busy");
  $("summary").textContent = `classifying ${file.name}…`;
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  try { response = await fetch("/v1/predict", { method: "POST", body: form }); }
  catch (e) { showError(`could not reach the server (${e.message})`); return; }
  if (!response.ok) { showError(await apiError(response)); return; }
  const result = await response.json();
  state.last = result;
  let bitmap = null;
  try { bitmap = await createImageBitmap(file, { imageOrientation: "from-image" }); } catch { bitmap = null; }
  const n = result.faces.length;
  const summary = `${file.name}: ${result.width}×${result.height}, ${n === 0 ? "no face found" : n === 1 ? "1 face" : n + " faces"}`;
  if (bitmap) {  // the browser decodes it: draw the photo and the results here
    const fit = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
    canvas.width = Math.round(bitmap.width * fit);
    canvas.height = Math.round(bitmap.height * fit);
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    drawFaces(result.faces, canvas.width / result.width, false);
    canvas.hidden = false; $("annotated").hidden = true;
  } else {  // e.g. TIFF, which browsers do not display: ask the server for the annotated PNG
    const png = await fetch("/v1/predict?annotate=1", { method: "POST", body: form });
    if (!png.ok) { showError(await apiError(png)); return; }
    $("annotated").src = URL.createObjectURL(await png.blob());
    $("annotated").hidden = false; canvas.hidden = true;
  }
  listFaces(result.faces, false, summary);
  setState("done");
}

const drop = $("drop");
$("file").addEventListener("change", (e) => { if (e.target.files[0]) classifyPhoto(e.target.files[0]); });
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => { const f = e.dataTransfer.files[0]; if (f) classifyPhoto(f); });

// ---- webcam mode -----------------------------------------------------------------------------------
const cam = { stream: null, session: null, timer: null, inFlight: false, last: null, sent: 0, started: 0 };
const grab = document.createElement("canvas");

function newSessionId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function startWebcam() {
  showError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("this browser gives no camera access here (open the page as http://localhost or over https)");
    return;
  }
  try {
    cam.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) { showError(`camera: ${e.message || e.name}`); return; }
  const video = $("video");
  video.srcObject = cam.stream;
  await video.play();
  cam.session = newSessionId();
  cam.sent = 0; state.frames = 0; cam.started = performance.now();
  $("cam-start").disabled = true; $("cam-stop").disabled = false;
  canvas.hidden = false; $("annotated").hidden = true;
  setState("webcam");
  $("cam-status").textContent = `Camera on: ${video.videoWidth}×${video.videoHeight}, sending at most ` +
    `${Math.min(15, Math.max(1, Number($("cam-fps").value) || 5))} frames/s, one at a time.`;
  schedule();
  requestAnimationFrame(render);
}

function schedule() {
  const fps = Math.min(15, Math.max(1, Number($("cam-fps").value) || 5));
  cam.timer = setTimeout(() => { sendFrame(); if (cam.stream) schedule(); }, 1000 / fps);
}

async function sendFrame() {
  const video = $("video");
  if (cam.inFlight || !cam.stream || !video.videoWidth) return;  // one frame in flight at a time
  cam.inFlight = true;
  const fit = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
  grab.width = Math.round(video.videoWidth * fit); grab.height = Math.round(video.videoHeight * fit);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.85));
  try {
    const response = await fetch(`/v1/stream/${cam.session}`, { method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" } });
    if (!response.ok) { showError(await apiError(response)); return; }
    cam.last = await response.json();
    state.last = cam.last; state.frames += 1;
    document.body.dataset.frames = String(state.frames);
    const rate = state.frames / ((performance.now() - cam.started) / 1000);
    listFaces(cam.last.faces, true, `frame ${cam.last.frame}, ${cam.last.faces.length} face(s), ` +
      `${rate.toFixed(1)} frames/s answered; averaged over up to ${cam.last.window} frames per face`);
  } catch (e) { showError(`could not reach the server (${e.message})`); }
  finally { cam.inFlight = false; }
}

function render() {
  if (!cam.stream) return;
  const video = $("video");
  if (video.videoWidth) {
    if (canvas.width !== video.videoWidth) { canvas.width = video.videoWidth; canvas.height = video.videoHeight; }
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    if (cam.last) drawFaces(cam.last.faces, canvas.width / cam.last.width, true);
  }
  requestAnimationFrame(render);
}

function stopWebcam() {
  clearTimeout(cam.timer);
  if (cam.stream) cam.stream.getTracks().forEach((t) => t.stop());
  cam.stream = null;
  if (cam.session) fetch(`/v1/stream/${cam.session}`, { method: "DELETE" }).catch(() => {});
  $("cam-start").disabled = false; $("cam-stop").disabled = true;
  $("cam-status").textContent = "Camera off.";
  setState("idle");
}

$("cam-start").addEventListener("click", startWebcam);
$("cam-stop").addEventListener("click", stopWebcam);

// ---- tabs and model information --------------------------------------------------------------------
function selectTab(which) {
  const photo = which === "photo";
  $("tab-photo").setAttribute("aria-selected", String(photo));
  $("tab-webcam").setAttribute("aria-selected", String(!photo));
  $("photo-panel").hidden = !photo; $("webcam-panel").hidden = photo;
  if (photo) stopWebcam();
}
$("tab-photo").addEventListener("click", () => selectTab("photo"));
$("tab-webcam").addEventListener("click", () => selectTab("webcam"));

fetch("/v1/models").then((r) => r.json()).then((info) => {
  const m = info.model;
  state.labels = m.labels;
  const acc = m.accuracy && m.accuracy.PublicTest ? `, ${(m.accuracy.PublicTest * 100).toFixed(2)}% on FER2013 PublicTest` : "";
  $("model-info").textContent = `model ${m.name} (${m.arch}${acc}); detector ${info.detector.name}; ` +
    `uploads up to ${info.limits.max_upload_mb} MB`;
}).catch(() => { $("model-info").textContent = "model information unavailable"; });
