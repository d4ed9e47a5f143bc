// The ftlens serve dashboard: plain JavaScript over the /v1 API, polled every two seconds.
// Every user string goes into the page as text (textContent / text nodes), never as markup.
"use strict";

const KEY = "ftlens-api-key";
const POLL_MS = 2000;
let timer = null;
let openCheckpoint = null;
const chosen = new Set();  // jobs ticked for comparison, kept across refreshes

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  const headers = Object.assign({}, opts.headers || {});
  const key = sessionStorage.getItem(KEY);
  if (key) headers["Authorization"] = "Bearer " + key;
  opts.headers = headers;
  const r = await fetch("/v1" + path, opts);
  if (r.status === 401) { askKey(); throw new Error("this service needs its API key"); }
  if (opts.raw) { if (!r.ok) throw new Error(r.statusText); return r; }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
  return body;
}

function askKey() {
  const d = document.getElementById("login");
  if (!d.open) d.showModal();
}

function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
function duration(job) {
  if (!job.created_at) return "";
  const end = job.finished_at || Date.now() / 1000;
  const s = Math.max(0, Math.round(end - job.created_at));
  return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s";
}

function table(headers, rows, onclick) {
  const t = el("table", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h))));
  rows.forEach((cells, i) => {
    const tr = el("tr", onclick ? { class: "clickable" } : {}, ...cells.map((c) => el("td", {}, c)));
    if (onclick) tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "INPUT") onclick(i); });
    t.append(tr);
  });
  return t;
}

// A line chart of named series [{name, points: [[x, y], ...]}], drawn as SVG; ``range``
// fixes the y axis (e.g. [0, 1] for rates), else it spans the points.
function chart(title, series, range) {
  const W = 720, H = 240, L = 52, R = 12, T = 24, B = 28;
  const all = series.flatMap((s) => s.points);
  const box = svg("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`,
                           "data-points": all.length, role: "img" });
  box.append(Object.assign(svg("text", { x: L, y: 16 }), { textContent: title }));
  if (!all.length) {
    box.append(Object.assign(svg("text", { x: L, y: H / 2 }), { textContent: "no points yet" }));
    return box;
  }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let [y0, y1] = range || [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  box.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  box.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const [v, y] of [[y1, T + 4], [y0, H - B]]) {
    box.append(Object.assign(svg("text", { x: 4, y }), { textContent: v.toPrecision(3) }));
  }
  box.append(Object.assign(svg("text", { x: L, y: H - 8 }), { textContent: "step " + x0 }));
  box.append(Object.assign(svg("text", { x: W - R - 60, y: H - 8 }), { textContent: "step " + x1 }));
  series.forEach((s, i) => {
    if (!s.points.length) return;
    box.append(svg("polyline", { class: "s" + (i % 6), "data-series": s.name,
                                 points: s.points.map((p) => X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1)).join(" ") }));
    const label = svg("text", { x: W - R - 200, y: 16 + 13 * i, class: "s" + (i % 6) });
    label.textContent = "— " + s.name;
    label.setAttribute("style", "");
    box.append(label);
  });
  return box;
}

async function allEvents(jobId) {
  let out = [], after = null;
  for (let page = 0; page < 50; page++) {
    const q = "?limit=100" + (after ? "&after=" + encodeURIComponent(after) : "");
    const r = await api(`/fine_tuning/jobs/${encodeURIComponent(jobId)}/events${q}`);
    out = out.concat(r.data);
    if (!r.has_more) break;
    after = r.last_id;
  }
  return out;
}

function series(events, keys) {
  const byStep = new Map();
  for (const e of events) {
    if (e.type === "metrics" && e.data && !byStep.has(e.data.step)) byStep.set(e.data.step, e.data);
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  return keys.map((k) => ({ name: k, points: steps.filter((s) => Number.isFinite(byStep.get(s)[k]))
                                              .map((s) => [s, byStep.get(s)[k]]) }));
}

// The task metrics a job logged (classification/…, when it asked for them), the summary ones
// first, then each class's recall; at most six lines.
function taskKeys(events) {
  const keys = new Set();
  for (const e of events) {
    if (e.type !== "metrics" || !e.data) continue;
    for (const k of Object.keys(e.data)) if (k.startsWith("classification/")) keys.add(k);
  }
  const first = ["classification/macro_f1", "classification/accuracy", "classification/recall", "classification/f1.0"];
  const recalls = [...keys].filter((k) => k.startsWith("classification/recall/")).sort();
  return [...first.filter((k) => keys.has(k)), ...recalls].slice(0, 6);
}

function alarms(diagnosis) {
  const box = el("div", { id: "alarms" });
  if (!diagnosis.findings.length) {
    box.append(el("p", {}, diagnosis.reason ? "No diagnosis yet: " + diagnosis.reason : "No alarms."));
  }
  for (const f of diagnosis.findings) {
    box.append(el("div", { class: "alarm " + f.severity, "data-id": f.id },
                  el("strong", {}, f.severity.toUpperCase() + " " + f.id + ": "), f.title,
                  el("div", { class: "evidence" }, f.evidence || ""),
                  el("div", { class: "advice" }, f.advice || "")));
  }
  return box;
}

async function control(jobId, action) {
  try { await api(`/fine_tuning/jobs/${encodeURIComponent(jobId)}/${action}`, { method: "POST" }); }
  catch (e) { say(e.message); }
  render();
}

async function download(fileId, name) {
  const r = await api(`/files/${encodeURIComponent(fileId)}/content`, { raw: true });
  let blob = await r.blob();
  const text = await blob.text();
  if (/^[A-Za-z0-9+/=\s]+$/.test(text) && text.trim().length % 4 === 0) {  // OpenAI's base64 CSV
    try { blob = new Blob([atob(text.trim())], { type: "text/csv" }); } catch (e) { /* as is */ }
  }
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a); a.click(); a.remove();
}

// pages ----------------------------------------------------------------------------------
async function jobsPage(view) {
  const jobs = (await api("/fine_tuning/jobs?limit=100")).data;
  const compare = el("button", { id: "compare", onclick: () => { location.hash = "#/compare/" + [...chosen].join(","); } }, "Compare chosen jobs");
  view.append(el("h2", {}, "Fine-tuning jobs"), compare);
  view.append(table(["", "job", "status", "model", "created", "duration", "trained tokens", "fine-tuned model"],
    jobs.map((j) => [el("input", Object.assign({ type: "checkbox", "data-job": j.id, onchange: (ev) => { ev.target.checked ? chosen.add(j.id) : chosen.delete(j.id); } }, chosen.has(j.id) ? { checked: "" } : {})),
                     el("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, j.id), j.status, j.model,
                     when(j.created_at), duration(j), j.trained_tokens ?? "", j.fine_tuned_model || ""]),
    (i) => { location.hash = "#/jobs/" + encodeURIComponent(jobs[i].id); }));
}

async function jobPage(view, jobId) {
  const id = encodeURIComponent(jobId);
  const [job, events, ckpts, diagnosis] = await Promise.all([
    api(`/fine_tuning/jobs/${id}`), allEvents(jobId), api(`/fine_tuning/jobs/${id}/checkpoints?limit=100`),
    api(`/dashboard/jobs/${id}/diagnosis`)]);
  view.append(el("h2", {}, "Job " + job.id), el("p", { id: "job-status" }, "Status: " + job.status + (job.error ? " — " + job.error.message : "")));
  const buttons = el("div", { class: "buttons" });
  if (["validating_files", "queued", "running", "paused"].includes(job.status)) buttons.append(el("button", { onclick: () => control(jobId, "cancel") }, "Cancel"));
  if (job.status === "running") buttons.append(el("button", { onclick: () => control(jobId, "pause") }, "Pause"));
  if (job.status === "paused") buttons.append(el("button", { onclick: () => control(jobId, "resume") }, "Resume"));
  for (const f of job.result_files || []) buttons.append(el("button", { onclick: () => download(f, job.id + "-results.csv") }, "Download result CSV"));
  view.append(buttons);
  const task = job.compute_classification_metrics
    ? job.classification_n_classes + " classes" + (job.classification_positive_class ? ", positive " + job.classification_positive_class : "")
    : "off";
  view.append(table(["model", "fine-tuned model", "training file", "validation file", "method", "hyperparameters", "task metrics", "seed", "suffix"],
    [[job.model, job.fine_tuned_model || "", job.training_file, job.validation_file || "", job.method ? job.method.type : "supervised",
      JSON.stringify(job.method ? job.method[job.method.type].hyperparameters : job.hyperparameters), task, job.seed, job.user_provided_suffix || ""]]));
  view.append(el("h3", {}, "Curve diagnosis"), alarms(diagnosis));
  view.append(chart("loss", series(events, ["train_loss", "valid_loss", "full_valid_loss"])));
  view.append(chart("token accuracy", series(events, ["train_mean_token_accuracy", "valid_mean_token_accuracy", "full_valid_mean_token_accuracy"])));
  const tasks = taskKeys(events);
  if (tasks.length) view.append(chart("task metrics on the validation rows", series(events, tasks), [0, 1]));
  view.append(el("h3", {}, "Checkpoints"));
  const cks = ckpts.data;
  view.append(table(["step", "checkpoint model", "created"], cks.map((c) => [c.step_number, c.fine_tuned_model_checkpoint, when(c.created_at)]),
    (i) => { openCheckpoint = cks[i].id; render(); }));
  const shown = cks.find((c) => c.id === openCheckpoint);
  if (shown) view.append(el("pre", { id: "checkpoint-metrics" }, shown.fine_tuned_model_checkpoint + "\n" + JSON.stringify(shown.metrics, null, 2)));
  view.append(el("h3", {}, "Events"));
  view.append(table(["time", "level", "message"], events.slice(0, 200).map((e) => [when(e.created_at), e.level, e.message])));
}

async function comparePage(view, ids) {
  const list = ids.split(",").filter(Boolean);
  const evs = await Promise.all(list.map((j) => allEvents(decodeURIComponent(j))));
  view.append(el("h2", {}, "Compare " + list.length + " jobs"));
  for (const key of ["train_loss", "valid_loss"]) {
    view.append(chart(key, list.map((j, i) => ({ name: decodeURIComponent(j), points: series(evs[i], [key])[0].points }))));
  }
}

const audits = new Map();  // file id -> its audit (files never change)

function auditCell(f) {
  if (f.purpose !== "fine-tune") return "";
  const a = audits.get(f.id);
  if (!a) return "auditing…";
  return auditBox(f.id, a);
}

function auditBox(fileId, a) {
  if (!a.verdict) return a.reason || "";
  return el("div", { class: "audit", "data-file": fileId }, a.examples + " examples, audit: ",
            el("strong", {}, a.verdict),
            ...a.findings.map((x) => el("div", { class: "alarm " + x.severity, "data-id": x.id },
                                        x.severity.toUpperCase() + " " + x.id + ": " + x.title)));
}

async function filesPage(view) {
  const files = (await api("/files?limit=100")).data;
  await Promise.all(files.filter((f) => f.purpose === "fine-tune" && !audits.has(f.id)).slice(0, 5).map(
    async (f) => audits.set(f.id, await api(`/dashboard/files/${encodeURIComponent(f.id)}/audit`))));
  view.append(el("h2", {}, "Files"));
  view.append(table(["file", "name", "purpose", "bytes", "created", "audit"],
    files.map((f) => [f.id, f.filename, f.purpose, f.bytes, when(f.created_at), auditCell(f)])));
}

async function batchesPage(view) {
  const batches = (await api("/batches?limit=100")).data;
  view.append(el("h2", {}, "Batches"));
  view.append(table(["batch", "status", "endpoint", "done / failed / total", "created", "output file", "error file"],
    batches.map((b) => [b.id, b.status, b.endpoint,
                        `${b.request_counts.completed} / ${b.request_counts.failed} / ${b.request_counts.total}`,
                        when(b.created_at), b.output_file_id || "", b.error_file_id || ""])));
}

async function newJobPage(view) {
  const models = (await api("/models")).data;
  const out = el("p", { id: "new-job-result" });
  const form = el("form", { class: "new" },
    el("label", {}, "Training file (chat JSONL) ", el("input", { type: "file", name: "training", required: "" })),
    el("label", {}, "Validation file (optional) ", el("input", { type: "file", name: "validation" })),
    el("label", {}, "Model ", el("select", { name: "model" }, ...models.map((m) => el("option", { value: m.id }, m.id)))),
    el("label", {}, "Epochs ", el("input", { name: "n_epochs", placeholder: "auto" })),
    el("label", {}, "Batch size ", el("input", { name: "batch_size", placeholder: "auto" })),
    el("label", {}, "Learning rate multiplier ", el("input", { name: "learning_rate_multiplier", placeholder: "auto" })),
    el("label", {}, "Suffix ", el("input", { name: "suffix" })),
    el("label", {}, el("input", { type: "checkbox", name: "task_metrics" }), " Task metrics while training (precision, recall, F1 on the validation rows)"),
    el("label", {}, "Positive class (task metrics, two classes) ", el("input", { name: "positive", placeholder: "the rarer one" })),
    el("button", { type: "submit", id: "upload" }, "Upload and audit"), out);
  const audited = el("div", { id: "new-job-audit" });
  const start = el("button", { id: "start", hidden: "" }, "Start the job");
  let uploaded = null;  // [training file id, validation file id or null]
  form.addEventListener("submit", async (ev) => {  // step 1: upload, show the audit
    ev.preventDefault();
    stop();
    const data = new FormData(form);
    try {
      const upload = async (file) => {
        const body = new FormData(); body.append("purpose", "fine-tune"); body.append("file", file);
        return (await api("/files", { method: "POST", body })).id;
      };
      const training = await upload(data.get("training"));
      const valid = data.get("validation") && data.get("validation").size ? await upload(data.get("validation")) : null;
      uploaded = [training, valid];
      const report = await api(`/dashboard/files/${encodeURIComponent(training)}/audit`);
      audited.replaceChildren(el("h3", {}, "Audit of the training file"), auditBox(training, report));
      start.hidden = false;
      out.textContent = "";
    } catch (e) { out.textContent = e.message; out.className = "error"; }
  });
  start.addEventListener("click", async () => {  // step 2: start it with the chosen settings
    const data = new FormData(form);
    const [training, valid] = uploaded;
    try {
      const hyper = {};
      for (const k of ["n_epochs", "batch_size", "learning_rate_multiplier"]) {
        const v = String(data.get(k) || "").trim();
        if (v) hyper[k] = Number(v);
      }
      const body = { model: data.get("model"), training_file: training, validation_file: valid,
                     hyperparameters: hyper, suffix: String(data.get("suffix") || "") || null };
      if (data.get("task_metrics")) {  // the legacy API's fields, an ftlens extension
        body.compute_classification_metrics = true;
        const positive = String(data.get("positive") || "").trim();
        if (positive) body.classification_positive_class = positive;
      }
      const job = await api("/fine_tuning/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body) });
      location.hash = "#/jobs/" + encodeURIComponent(job.id);
    } catch (e) { out.textContent = e.message; out.className = "error"; }
  });
  view.append(el("h2", {}, "New fine-tuning job"), form, audited, start);
}

// routing and polling --------------------------------------------------------------------
function say(text) { document.getElementById("status").textContent = text || ""; }
function stop() { if (timer) clearTimeout(timer); timer = null; }

async function render() {
  stop();
  const route = location.hash.replace(/^#\/?/, "") || "jobs";
  const [page, arg] = [route.split("/")[0], route.split("/").slice(1).join("/")];
  const view = el("div");
  try {
    if (page === "jobs" && arg) await jobPage(view, decodeURIComponent(arg));
    else if (page === "compare") await comparePage(view, arg);
    else if (page === "files") await filesPage(view);
    else if (page === "batches") await batchesPage(view);
    else if (page === "new") { await newJobPage(view); document.getElementById("view").replaceChildren(view); return; }
    else await jobsPage(view);
    say("");
  } catch (e) { say(e.message); }
  const keep = document.getElementById("view");
  if (view.childNodes.length) keep.replaceChildren(view);
  timer = setTimeout(render, POLL_MS);
}

document.getElementById("login-form").addEventListener("submit", () => {
  sessionStorage.setItem(KEY, document.getElementById("login-key").value);
  render();
});
window.addEventListener("hashchange", () => { openCheckpoint = null; render(); });
render();
