// announcer console: plain JavaScript, no libraries, everything from this server.
"use strict";

const TOKEN_KEY = "announcer.token";
const POLL_MS = 1000;
const STATE_LABELS = {
  queued: "排队 queued", started: "播放中 started", finished: "完成 finished",
  interrupted: "被打断 interrupted", cancelled: "已取消 cancelled", expired: "已过期 expired",
  rejected: "已拒绝 rejected", failed: "失败 failed", mixed: "部分完成 mixed", unknown: "未知 unknown",
};
const PRIORITY_LABELS = { low: "低 low", normal: "普通 normal", high: "高 high", emergency: "紧急 emergency" };

const $ = (id) => document.getElementById(id);
let info = null;
let audioUrl = null;
let pollTimer = null;

class ApiError extends Error {
  constructor(status, field, message) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

function authHeaders() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

async function api(method, path, body) {
  const headers = authHeaders();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", "无法连接服务器 cannot reach the server (" + e.message + ")");
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401) showTokenPanel(data && data.error);
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.field) || "HTTP " + res.status,
                       (data && data.error) || res.statusText);
  }
  return data;
}

// ---- errors and busy state ------------------------------------------------------------
function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  const field = err.field ? err.field + ": " : "";
  box.textContent = "错误 Error — " + field + err.message;
  box.hidden = false;
}

function setBusy(busy) {
  for (const id of ["listen", "announce"]) $(id).disabled = busy;
  $("busy").hidden = !busy;
}

// ---- token ----------------------------------------------------------------------------
function showTokenPanel(message) {
  $("token-panel").hidden = false;
  $("token-button").hidden = false;
  if (message && token()) showError(new ApiError(401, "token", message));
  $("token-input").focus();
}

function setupToken() {
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token-input").value.trim();
    if (value) localStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    $("token-panel").hidden = true;
    showError(null);
    init();
  });
  $("token-forget").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    $("token-input").value = "";
    showTokenPanel();
  });
  $("token-button").addEventListener("click", () => {
    $("token-panel").hidden = !$("token-panel").hidden;
  });
}

// ---- form -----------------------------------------------------------------------------
function option(value, label, selected) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  o.selected = !!selected;
  return o;
}

function fillForm() {
  $("version").textContent = "v" + info.version;
  $("token-button").hidden = !info.auth_required;
  $("max-chars").textContent = info.max_text_chars;
  $("text").maxLength = info.max_text_chars;

  const emotion = $("emotion");
  emotion.replaceChildren(...info.emotions.map((e) =>
    option(e.name, e.display + " " + e.name, e.name === info.defaults.emotion)));
  const priority = $("priority");
  priority.replaceChildren(...info.priorities.map((p) =>
    option(p, PRIORITY_LABELS[p] || p, p === info.defaults.priority)));
  $("intensity").value = info.defaults.intensity;
  $("speed").value = info.defaults.speed;
  updateOutputs();

  const engine = $("engine");
  engine.replaceChildren(...info.engines.map((e) =>
    option(e.name, e.name + " (" + e.type + (e.available ? "" : ", 不可用 unavailable") + ")",
           e.name === info.default_engine)));
  fillVoices();

  // translations: one extra language, offered when the config maps languages to engines
  const langs = Object.keys(info.languages || {});
  $("translation-row").hidden = langs.length === 0;
  $("translation-lang").replaceChildren(...langs.map((l) =>
    option(l, l + " (" + info.languages[l] + ")", l === (langs.find((x) => x !== "zh") || langs[0]))));

  const list = $("target-list");
  const targets = info.speakers.map((s) => ({ name: s.name, label: s.display, kind: "扬声器 speaker" }))
    .concat(info.zones.map((z) => ({ name: z.name, label: z.display, kind: "区域 zone" })));
  list.replaceChildren(...targets.map((t) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = t.name;
    box.checked = info.default_targets.includes(t.name);
    label.append(box, document.createTextNode(
      t.label + (t.label !== t.name ? " (" + t.name + ")" : "") + " · " + t.kind));
    return label;
  }));
}

function fillVoices() {
  const eng = info.engines.find((e) => e.name === $("engine").value);
  const voices = (eng && eng.voices) || [];
  const preferred = (eng && eng.name === info.default_engine && info.defaults.voice) || (eng && eng.default_voice);
  $("voice").replaceChildren(...voices.map((v) => option(v, v, v === preferred)));
}

function updateOutputs() {
  $("intensity-value").textContent = Number($("intensity").value).toFixed(1);
  $("speed-value").textContent = Number($("speed").value).toFixed(2) + "×";
  $("count").textContent = $("text").value.length;
}

function speechFields() {
  const fields = {
    text: $("text").value,
    emotion: $("emotion").value,
    intensity: Number($("intensity").value),
    speed: Number($("speed").value),
    engine: $("engine").value,
  };
  if ($("voice").value) fields.voice = $("voice").value;
  const translation = $("translation").value.trim();
  if (translation && $("translation-lang").value) {
    fields.translations = { [$("translation-lang").value]: translation };
  }
  return fields;
}

// ---- actions --------------------------------------------------------------------------
async function listen() {
  showError(null);
  setBusy(true);
  try {
    const res = await api("POST", "/tts", speechFields());
    const wav = await fetch(res.audio_url, { headers: authHeaders() });
    if (!wav.ok) throw new ApiError(wav.status, "audio", "音频下载失败 cannot fetch the audio");
    const blob = await wav.blob();
    if (audioUrl) URL.revokeObjectURL(audioUrl);
    audioUrl = URL.createObjectURL(blob);
    const player = $("player");
    player.src = audioUrl;
    $("download").href = audioUrl;
    $("download").download = "announcement-" + res.id + ".wav";
    $("audio-info").textContent = res.duration.toFixed(2) + " s · " + res.sample_rate + " Hz" +
      (res.warnings && res.warnings.length ? " · " + res.warnings.join("; ") : "");
    $("result").hidden = false;
    player.play().catch(() => { /* autoplay may be blocked: the controls are there */ });
  } catch (err) {
    showError(err);
  } finally {
    setBusy(false);
  }
}

async function announce() {
  showError(null);
  setBusy(true);
  try {
    const fields = speechFields();
    fields.priority = $("priority").value;
    const targets = [...document.querySelectorAll("#target-list input:checked")].map((b) => b.value);
    if (targets.length) fields.targets = targets;
    await api("POST", "/announce", fields);
    await refresh();
  } catch (err) {
    showError(err);
  } finally {
    setBusy(false);
  }
}

async function stopAll() {
  showError(null);
  try {
    await api("POST", "/stop", {});
    await refresh();
  } catch (err) {
    showError(err);
  }
}

// ---- recent announcements -------------------------------------------------------------
function renderRecent(items) {
  $("recent-empty").hidden = items.length > 0;
  $("recent").replaceChildren(...items.map((a) => {
    const li = document.createElement("li");
    li.dataset.id = a.id;
    li.dataset.state = a.state;
    const head = document.createElement("div");
    const badge = document.createElement("span");
    badge.className = "state state-" + a.state;
    badge.textContent = STATE_LABELS[a.state] || a.state;
    const meta = document.createElement("span");
    meta.className = "muted";
    const when = a.received ? new Date(a.received * 1000).toLocaleTimeString() : "";
    meta.textContent = [when, (a.targets || []).join(", "), a.priority || "", a.id].filter(Boolean).join(" · ");
    head.append(badge, meta);
    const text = document.createElement("div");
    text.className = "text";
    const rejected = a.events.find((e) => e.state === "rejected" || e.state === "failed");
    text.textContent = a.text || (rejected ? rejected.error : "");
    li.append(head, text);
    return li;
  }));
}

async function refresh() {
  const data = await api("GET", "/announcements?limit=20");
  renderRecent(data.announcements);
}

function poll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => {
    if (!document.hidden) {
      try { await refresh(); } catch (err) { if (err.status === 401) return; }
    }
    poll();
  }, POLL_MS);
}

// ---- history --------------------------------------------------------------------------
let csvUrl = null;

function historyQuery(extra) {
  const params = new URLSearchParams(extra || {});
  for (const [id, key] of [["history-since", "since"], ["history-until", "until"],
                           ["history-target", "target"], ["history-source", "source"]]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  return "/history?" + params.toString();
}

function fillHistoryFilters() {
  const targets = [option("", "全部 all")].concat(
    info.speakers.map((s) => option(s.name, s.display + (s.display !== s.name ? " (" + s.name + ")" : ""))),
    info.zones.map((z) => option(z.name, z.display + (z.display !== z.name ? " (" + z.name + ")" : ""))));
  $("history-target").replaceChildren(...targets);
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function historyContent(r) {
  let said = r.text || "";
  if (r.template) said = "[" + r.template + " " + JSON.stringify(r.vars || {}) + "] " + said;
  if (r.clips && r.clips.length) said = (said + " ♪" + r.clips.join(" ♪")).trim();
  return said || (r.error || "");
}

function renderHistory(data) {
  $("history-count").textContent = data.count + (data.truncated ? "+" : "") + " 条 records";
  $("history-table").hidden = data.announcements.length === 0;
  $("history-rows").replaceChildren(...data.announcements.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.dataset.state = r.state;
    const via = Object.entries(r.via || {}).map(([k, v]) => k + "=" + v).join(" ");
    const outcome = Object.entries(r.speaker_results || {}).map(([s, v]) => s + ": " + v.state).join(", ");
    tr.append(
      cell(new Date(r.received).toLocaleString()),
      cell(r.source + (via ? " (" + via + ")" : "")),
      cell(historyContent(r), "text"),
      cell((r.targets || []).join(", ")),
      cell((STATE_LABELS[r.state] || r.state) + (outcome ? " — " + outcome : "") +
           (r.state === "rejected" && r.error ? " — " + r.error : ""), "state-" + r.state));
    return tr;
  }));
}

async function searchHistory() {
  showError(null);
  try {
    renderHistory(await api("GET", historyQuery({ limit: "200" })));
  } catch (err) {
    showError(err);
  }
}

async function exportCsv() {
  showError(null);
  try {
    const url = historyQuery({ format: "csv", order: "oldest", limit: "10000" });
    const res = await fetch(url, { headers: authHeaders() });
    if (!res.ok) throw new ApiError(res.status, "history", "导出失败 export failed (HTTP " + res.status + ")");
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(await res.blob());
    const link = $("history-csv-link");
    link.href = csvUrl;
    link.hidden = false;
    link.click();
  } catch (err) {
    showError(err);
  }
}

// ---- start ----------------------------------------------------------------------------
async function init() {
  try {
    info = await api("GET", "/api/info");
  } catch (err) {
    if (err.status !== 401) showError(err);
    return;
  }
  fillForm();
  fillHistoryFilters();
  document.body.dataset.ready = "true";
  try { await refresh(); } catch (err) { showError(err); }
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  setupToken();
  $("engine").addEventListener("change", fillVoices);
  for (const id of ["intensity", "speed", "text"]) $(id).addEventListener("input", updateOutputs);
  $("listen").addEventListener("click", listen);
  $("announce").addEventListener("click", announce);
  $("stop").addEventListener("click", stopAll);
  $("history-search").addEventListener("click", searchHistory);
  $("history-csv").addEventListener("click", exportCsv);
  init();
});
