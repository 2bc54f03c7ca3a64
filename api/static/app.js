// Xueliang console: alert wall (live over SSE), incident detail, camera health, map. No framework, no CDN.
"use strict";

(function () {
  const API = "/api/v1";
  const OPEN_STATES = new Set(["reported", "accepted", "dispatched", "received", "returned", "handling",
    "feedback", "verified", "escalated"]);
  const S = {
    token: sessionStorage.getItem("xl.token"),
    user: JSON.parse(sessionStorage.getItem("xl.user") || "null"),
    lang: localStorage.getItem("xl.lang") || "zh",
    incidents: new Map(),   // id -> incident (open ones shown on the wall)
    thumbs: new Map(),      // snapshot url + revision -> blob URL
    es: null, lastEventId: 0, retry: null, audio: null, view: null, dialogFor: null,
    wall: null,             // the last page from GET /wall: items, total, pages, counts
    selected: new Set(),    // ids ticked for a bulk action (on the current page)
    fresh: new Set(),       // ids created since the last render (flash once)
    sound: localStorage.getItem("xl.sound") !== "off",
    alerts: [],             // persistent urgent alerts shown in the banner
    alertLog: [],           // every cue played: {level, reason, id} (tests read it)
    centres: new Map(),     // centre id -> name (your subtree)
    names: new Map(),       // centre id -> name of the centres above yours
    cameras: new Map(),     // camera id -> name
    labels: new Map(),      // camera id -> {zone/line/rule name -> display name from the configuration}
  };
  window.XL = S; // for debugging and tests

  // ------------------------------------------------------------------ helpers
  const $ = (sel) => document.querySelector(sel);
  function t(key) { const d = window.XL_I18N[S.lang] || {}; return d[key] !== undefined ? d[key] : key; }
  function tr(prefix, value) { const k = prefix + "." + value; const v = t(k); return v === k ? String(value) : v; }
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
  }
  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toLocaleString(S.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  }
  function cname(id) { return id ? (S.centres.get(id) || S.names.get(id) || id) : "—"; }
  async function loadCentres() {
    const walk = (n) => { S.centres.set(n.id, n.name); n.children.forEach(walk); };
    try {
      const tree = await api("centres");
      walk(tree);
      for (const a of tree.ancestors || []) S.names.set(a.id, a.name); // named, but not dispatch targets
    } catch (e) { console.warn("centres", e); }
    try {
      for (const c of await api("cameras")) { if (c.name) S.cameras.set(c.id, c.name); S.labels.set(c.id, c.labels || {}); }
    } catch (e) { console.warn("cameras", e); }
  }
  function camname(id) { return S.cameras.get(id) || id; }
  // identifiers (ids, user names, configuration names without a display name) are shown as such, marked
  function ident(text) { return h("span", { class: "ident", translate: "no" }, text); }
  function label(cameraId, name) { return name ? ((S.labels.get(cameraId) || {})[name] || ident(name)) : null; }
  function zoneLabel(inc) { return label(inc.camera_id, inc.zone); }
  function ruleLabel(inc) { return label(inc.camera_id, inc.rule); }
  const DETAIL_KEYS = new Set(["dwell_s", "count", "max_count", "duration_s", "stationary_s", "area_px", "max_area_px",
    "frames", "crossings", "direction", "classes", "ended"]);
  function detailsOf(inc) {
    const parts = Object.entries(inc.details || {}).map(([k, v]) => [DETAIL_KEYS.has(k) ? t("dk." + k) : ident(k), " ",
      typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(1))
        : t("dv." + v) !== "dv." + v ? t("dv." + v) : ident(String(v)), "; "]);
    return parts.length ? parts : null;
  }
  function classesOf(inc) { return (inc.class_names || []).map((c) => tr("cls", c)).join(S.lang === "zh" ? "、" : ", "); }
  // system audit notes are written by the dispatcher in one language; show them in the user's
  function auditNote(a, inc) {
    const note = a.note || "";
    let m;
    const esc = (from, to) => cname(from) + " → " + cname(to);
    if (a.actor === "system") {
      if (a.action === "report") return t("an.report").replace("{camera}", camname(inc.camera_id));
      if (a.action === "escalate" && (m = /^(not accepted in time|not closed in time|escalated): (\S+) → (\S+)/.exec(note)))
        return t(m[1] === "not closed in time" ? "an.esc_close" : m[1] === "escalated" ? "an.escalated" : "an.esc_accept") + ": " + esc(m[2], m[3]);
      if (a.action === "raise_severity" && (m = /^severity (\w+) → (\w+) \(revision (\d+)\)(?:; owner (\S+) → (\S+))?/.exec(note)))
        return t("an.raise") + ": " + tr("sev", m[1]) + " → " + tr("sev", m[2]) + (m[4] ? "; " + t("f.owner") + " " + esc(m[4], m[5]) : "");
      if (a.action === "merge" && (m = /^occurrence (\d+): \S+ \((\w+)\) at (\S+)/.exec(note)))
        return t("an.merge").replace("{n}", m[1]) + " · " + tr("sev", m[2]) + " · " + fmtTime(m[3]);
      return note ? ident(note) : "";
    }
    if (a.action === "dispatch" && (m = /^to ([^:]+?)(?:: ([\s\S]*))?$/.exec(note)))
      return [t("an.dispatch_to") + " ", targetName(m[1]), m[2] ? "：" + m[2] : ""];
    if (a.action === "reject" && (note === "false_alarm" || note === "duplicate")) return tr("reason", note);
    if (a.action === "escalate" && (m = /^escalated: (\S+) → (\S+)(?:; ([\s\S]*))?$/.exec(note)))
      return [t("an.escalated") + ": " + esc(m[1], m[2]), m[3] ? "；" + m[3] : ""];
    return note; // what a person wrote, as written
  }
  // 分拨对象: a centre (its name), a grid worker (role, name, user name as an identifier) or a unit as typed
  function targetName(target) {
    if (S.centres.has(target) || S.names.has(target)) return cname(target);
    const w = (S.gridWorkers || []).find((g) => g.username === target);
    if (w || (S.user && S.user.role === "grid_worker" && S.user.username === target))
      return [t("role.grid_worker") + " ", w && w.display_name ? w.display_name + " " : "", ident(target)];
    return target;
  }
  function actorOf(a) { return a.actor === "system" ? t("actor.system") : [ident(a.actor), " (" + tr("role", a.role) + ")"]; }
  function pct(x) { return x === null || x === undefined ? "—" : (100 * x).toFixed(1) + "%"; }

  async function api(path, opts = {}) {
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (S.token) headers.Authorization = "Bearer " + S.token;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
    const res = await fetch(path.startsWith("/") ? path : API + "/" + path, { method: opts.method || "GET", headers, body: opts.body });
    if (res.status === 401 && !opts.noLogout) { logout(); throw new Error("unauthorised"); }
    if (!res.ok) {
      let detail = res.statusText;
      try { const j = await res.json(); detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
      const err = new Error(detail); err.status = res.status; throw err;
    }
    const type = res.headers.get("content-type") || "";
    return type.includes("json") ? res.json() : res;
  }

  async function thumb(inc) {
    if (!inc.snapshot_url) return null;
    const key = inc.snapshot_url + "#" + inc.revision;
    const have = S.thumbs.get(inc.id);
    if (have && have.key === key) return have.url;
    const res = await fetch(inc.snapshot_url, { headers: { Authorization: "Bearer " + S.token } });
    if (!res.ok) return null;
    const url = URL.createObjectURL(await res.blob());
    const again = S.thumbs.get(inc.id);
    if (again && again.key === key) { URL.revokeObjectURL(url); return again.url; }
    if (again) URL.revokeObjectURL(again.url);
    S.thumbs.set(inc.id, { key, url });
    return url;
  }
  function releaseThumbs(keep) {
    // a wall left open for a whole shift must not keep every snapshot it ever showed
    for (const [id, v] of S.thumbs) if (!keep.has(id)) { URL.revokeObjectURL(v.url); S.thumbs.delete(id); }
  }
  function keepFocus(container, render) {
    // live updates re-render; put the keyboard focus back on the same control instead of dropping it
    const a = document.activeElement;
    const key = a && container.contains(a) ? a.getAttribute("data-key") : null;
    render();
    if (key) { const el = container.querySelector(`[data-key="${CSS.escape(key)}"]`); if (el) el.focus({ preventScroll: true }); }
  }
  function setImg(img, inc) {
    thumb(inc).then((url) => { if (url) { img.src = url; img.classList.add("loaded"); } })
      .catch((e) => console.warn("snapshot", inc.id, e));
  }

  function applyI18n() {
    document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
    const snd = $("#sound"); if (snd) { snd.textContent = t(S.sound ? "sound.on" : "sound.off"); snd.setAttribute("aria-pressed", String(S.sound)); }
    document.title = t("app.title");
  }

  // Graded alerts: urgent (critical incident, red flag, escalated to my centre) gets a distinct
  // sound and a banner that stays until dismissed; a plain new incident a short beep and a 4-s
  // banner; nothing for incidents this user cannot act on (engineers, other centres' cases).
  function alertFor(kind, inc, change) {
    if (!S.user || !inc || !OPEN_STATES.has(inc.state)) return null;
    if (!(inc.permitted_actions || []).length) return null;
    if (kind === "incident.flag" && change && change.level === "red") return { level: "urgent", reason: "red" };
    if ((kind === "incident.escalated" || kind === "incident.rerouted") && inc.owner_centre_id === S.user.centre_id)
      return { level: "urgent", reason: "escalated" };
    if (kind === "incident.urged" && inc.owner_centre_id === S.user.centre_id) return { level: "urgent", reason: "urged" };
    if (kind === "incident.created") return inc.severity === "critical" ? { level: "urgent", reason: "critical" } : { level: "normal", reason: "new" };
    return null;
  }
  function tone(freqs, type, gap, gain) {
    if (!S.sound) return;
    try {
      S.audio = S.audio || new (window.AudioContext || window.webkitAudioContext)();
      const ctx = S.audio;
      freqs.forEach((f, i) => {
        const o = ctx.createOscillator(), g = ctx.createGain();
        o.type = type; o.frequency.value = f; g.gain.value = gain;
        o.connect(g); g.connect(ctx.destination);
        o.start(ctx.currentTime + i * gap); o.stop(ctx.currentTime + i * gap + gap * 0.8);
      });
    } catch (e) { console.warn("audio cue unavailable", e); }
  }
  function alertText(a) {
    const inc = a.inc;
    return "[" + t("alert." + a.reason) + "] " + camname(inc.camera_id) + " · " + ruleName(inc);
  }
  function renderBanner() {
    const b = $("#banner");
    const items = S.alerts.map((a) => h("div", { class: "alert alert-" + a.level, "data-id": a.inc.id, "data-reason": a.reason },
      h("a", { href: "#/incident/" + encodeURIComponent(a.inc.id), class: "alert-go",
        onclick: () => dismiss(a.inc.id) }, alertText(a)),
      h("button", { type: "button", class: "alert-close", "aria-label": t("btn.dismiss"), title: t("btn.dismiss"),
        onclick: () => dismiss(a.inc.id) }, "×")));
    b.replaceChildren(...items);
    b.hidden = items.length === 0;
  }
  function dismiss(id) { S.alerts = S.alerts.filter((a) => a.inc.id !== id); renderBanner(); }
  function cue(a, inc) {
    S.alertLog.push({ level: a.level, reason: a.reason, id: inc.id, sound: S.sound });
    if (S.alertLog.length > 200) S.alertLog.splice(0, S.alertLog.length - 200); // a console left open for weeks
    S.alerts = S.alerts.filter((x) => x.inc.id !== inc.id);
    if (a.level === "urgent") {
      S.alerts.unshift({ level: "urgent", reason: a.reason, inc });
      S.alerts = S.alerts.slice(0, 6);
      tone([988, 1319, 988, 1319, 988, 1319], "square", 0.16, 0.06);
    } else {
      const entry = { level: "normal", reason: a.reason, inc };
      S.alerts.push(entry);
      setTimeout(() => { S.alerts = S.alerts.filter((x) => x !== entry); renderBanner(); }, 4000);
      tone([880, 660], "sine", 0.18, 0.08);
    }
    renderBanner();
  }

  // ------------------------------------------------------------------ auth
  async function login(ev) {
    ev.preventDefault();
    const body = new URLSearchParams({ username: $("#username").value, password: $("#password").value });
    const res = await fetch(API + "/auth/token", { method: "POST", body });
    if (!res.ok) { $("#login-error").hidden = false; return; }
    const tok = await res.json();
    S.token = tok.access_token; S.user = tok.user;
    sessionStorage.setItem("xl.token", S.token); sessionStorage.setItem("xl.user", JSON.stringify(S.user));
    $("#login-error").hidden = true; $("#password").value = "";
    try { S.audio = S.audio || new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { S.audio = null; }
    start();
  }
  function logout() {
    S.token = null; S.user = null;
    sessionStorage.removeItem("xl.token"); sessionStorage.removeItem("xl.user");
    if (S.es) { S.es.close(); S.es = null; }
    clearTimeout(S.retry);
    S.incidents.clear(); S.selected.clear(); S.alerts = []; S.wall = null;
    releaseThumbs(new Set());
    location.hash = "#/login"; route();
  }

  // ------------------------------------------------------------------ live feed
  async function connectFeed() {
    if (S.es) { S.es.close(); S.es = null; }
    let ticket;
    try { ticket = (await api("auth/feed-ticket", { method: "POST" })).ticket; }
    catch (e) { S.retry = setTimeout(connectFeed, 2000); return; }
    const q = new URLSearchParams({ ticket });
    if (S.lastEventId) q.set("last_event_id", String(S.lastEventId));
    const es = new EventSource(API + "/feed?" + q.toString());
    S.es = es;
    es.addEventListener("hello", (m) => {
      $("#live").className = "live on"; $("#live").title = t("wall.live");
      const d = JSON.parse(m.data);
      S.lastEventId = Math.max(S.lastEventId, d.last_event_id);
      loadWall().catch((e) => console.warn("wall", e)); // (re)connected: resynchronise the wall
    });
    es.addEventListener("incident", (m) => {
      S.lastEventId = Number(m.lastEventId) || S.lastEventId;
      const d = JSON.parse(m.data);
      if (d.visible === false) { // escalated out of this centre's area
        S.incidents.delete(d.incident_id);
        S.selected.delete(d.incident_id);
        dismiss(d.incident_id);
        scheduleWall();
        return;
      }
      onIncident(d.incident, d.kind, d.change);
    });
    es.addEventListener("camera", (m) => {
      S.lastEventId = Number(m.lastEventId) || S.lastEventId;
      if (S.view === "cameras") loadCameras();
    });
    es.onerror = () => {
      $("#live").className = "live off"; $("#live").title = t("wall.offline");
      es.close(); if (S.es === es) S.es = null;
      clearTimeout(S.retry); S.retry = setTimeout(connectFeed, 1500);
    };
  }

  function onIncident(inc, kind, change) {
    if (!inc) return;
    const old = S.incidents.get(inc.id);
    if (old && old.version > inc.version) return; // stale
    S.incidents.set(inc.id, inc);
    if (kind === "incident.created" && S.view === "wall") S.fresh.add(inc.id);
    if (!OPEN_STATES.has(inc.state)) dismiss(inc.id);
    scheduleWall();
    if (S.view === "detail" && S.detailId === inc.id) loadDetail(inc.id);
    const a = alertFor(kind, inc, change);
    if (a) cue(a, inc);
    if (Date.now() - (S.kpiAt || 0) > 10000) { S.kpiAt = Date.now(); loadKpis().catch((e) => console.warn("kpis", e)); }
    clearTimeout(S.inboxTimer); S.inboxTimer = setTimeout(() => loadInboxCount().catch(() => {}), 500);
    if (S.view === "supervise") { clearTimeout(S.supTimer); S.supTimer = setTimeout(() => loadSupervise().catch(() => {}), 500); }
  }

  // ------------------------------------------------------------------ alert wall
  const SECS = (x) => x === null || x === undefined ? "—" : x < 90 ? Math.round(x) + " " + t("unit.s")
    : x < 5400 ? Math.round(x / 60) + " " + t("unit.min") : (x / 3600).toFixed(1) + " " + t("unit.h");
  async function loadKpis() {
    if (!S.user) return;
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    const k = await api("centres/" + encodeURIComponent(S.user.centre_id) + "/kpis?since=" + encodeURIComponent(since));
    $("#kpis").textContent = [t("kpi.total") + " " + k.total, t("kpi.accept_p50") + " " + SECS(k.time_to_accept.p50_s),
      t("kpi.overdue") + " " + pct(k.overdue_rate), t("kpi.false_alarm") + " " + pct(k.false_alarm_rate),
      t("kpi.escalations") + " " + k.escalations].join(" · ");
  }

  // The wall's state lives in the URL (#/wall?scope=open&view=list&severity=critical&q=...&page=2),
  // so a filtered view can be bookmarked, shared and survives a reload.
  const WALL_KEYS = ["scope", "view", "q", "severity", "sla", "state", "rule_type", "camera", "page"];
  const PAGE_SIZE = 60;
  function wallParams() {
    const hash = location.hash || "#/wall";
    const qs = hash.startsWith("#/wall?") ? hash.slice(7) : "";
    return new URLSearchParams(qs);
  }
  function setWallParams(update, keepPage) {
    const p = wallParams();
    for (const [k, v] of Object.entries(update)) { if (v === null || v === "" || v === undefined) p.delete(k); else p.set(k, v); }
    if (!keepPage) p.delete("page");
    for (const k of [...p.keys()]) if (!WALL_KEYS.includes(k)) p.delete(k);
    const qs = p.toString();
    const next = "#/wall" + (qs ? "?" + qs : "");
    if (location.hash !== next) location.hash = next; else loadWall();
  }
  function apiQuery(p, paged) {
    const q = new URLSearchParams();
    q.set("scope", ["closed", "away"].includes(p.get("scope")) ? p.get("scope") : "open");
    for (const k of ["severity", "state", "rule_type"]) if (p.get(k)) q.set(k, p.get(k));
    if (p.get("camera")) q.set("camera_id", p.get("camera"));
    if (p.get("q")) q.set("q", p.get("q"));
    const sla = p.get("sla");
    if (sla === "escalated_to_me") q.set("escalated_to_me", "true"); else if (sla) q.set("sla_flag", sla);
    if (paged) { q.set("page", String(Math.max(1, Number(p.get("page")) || 1))); q.set("page_size", String(PAGE_SIZE)); }
    return q;
  }
  function scheduleWall() {
    if (S.view !== "wall") return;
    clearTimeout(S.wallTimer);
    S.wallTimer = setTimeout(() => loadWall().catch((e) => console.warn("wall", e)), 150);
  }
  async function loadWall() {
    if (!S.token) return;
    if (Date.now() - (S.kpiAt || 0) > 10000) { S.kpiAt = Date.now(); loadKpis().catch((e) => console.warn("kpis", e)); }
    const p = wallParams();
    const seq = (S.wallSeq = (S.wallSeq || 0) + 1);
    const page = await api("wall?" + apiQuery(p, true).toString());
    if (seq !== S.wallSeq) return; // a newer request is under way
    if (page.page > page.pages && page.pages >= 1 && page.total > 0) { setWallParams({ page: String(page.pages) }, true); return; }
    S.wall = page;
    S.incidents = new Map(page.items.map((i) => [i.id, i]));
    for (const id of [...S.selected]) if (!S.incidents.has(id)) S.selected.delete(id);
    if (S.view === "wall") renderWall();
  }

  function fillSelect(sel, options, value) {
    const want = value || "";
    const opts = [["", t("filter.all." + sel.id.slice(2))], ...options];
    if (sel.options.length !== opts.length || sel.dataset.lang !== S.lang || sel.dataset.sig !== opts.map((o) => o[0]).join()) {
      sel.replaceChildren(...opts.map(([v, label]) => h("option", { value: v }, label)));
      sel.dataset.lang = S.lang; sel.dataset.sig = opts.map((o) => o[0]).join();
    }
    sel.value = want;
  }
  function renderFilters(p) {
    const closed = p.get("scope") === "closed";
    const states = closed ? ["closed", "rejected"] : [...OPEN_STATES];
    fillSelect($("#f-severity"), ["critical", "major", "serious", "general"].map((v) => [v, tr("sev", v)]), p.get("severity"));
    fillSelect($("#f-sla"), [["red", t("sla.red")], ["escalated_to_me", t("urgency.escalated_to_me")], ["yellow", t("sla.yellow")], ["none", t("sla.none")]], p.get("sla"));
    fillSelect($("#f-state"), states.map((v) => [v, tr("st", v)]), p.get("state"));
    fillSelect($("#f-rule-type"), RULE_TYPES.map((v) => [v, tr("rt", v)]), p.get("rule_type"));
    fillSelect($("#f-camera"), [...S.cameras.entries()].map(([id, name]) => [id, name]), p.get("camera"));
    if (document.activeElement !== $("#f-q")) $("#f-q").value = p.get("q") || "";
    const scope = ["closed", "away"].includes(p.get("scope")) ? p.get("scope") : "open";
    for (const b of document.querySelectorAll("[data-scope]")) { b.classList.toggle("on", b.dataset.scope === scope); b.setAttribute("aria-pressed", String(b.dataset.scope === scope)); }
    const list = p.get("view") === "list";
    $("#view-cards").classList.toggle("on", !list); $("#view-list").classList.toggle("on", list);
    $("#view-cards").setAttribute("aria-pressed", String(!list)); $("#view-list").setAttribute("aria-pressed", String(list));
  }
  const RULE_TYPES = ["intrusion", "loitering", "crowding", "line_crossing", "stalled_vehicle", "abandoned_object", "fire_smoke", "camera_fault"];

  function renderUrgent(c, closed) {
    const p = wallParams();
    const chip = (key, n, sla, cls) => h("button", { type: "button", class: "chip " + cls + (p.get("sla") === sla ? " on" : ""),
      id: "chip-" + key, "data-count": String(n), disabled: n === 0 && p.get("sla") !== sla,
      onclick: () => setWallParams({ sla: p.get("sla") === sla ? null : sla }) }, t("chip." + key) + " " + n);
    $("#urgent").replaceChildren(...(closed ? [] : [
      chip("red", c.red, "red", "c-red"), chip("escalated_to_me", c.escalated_to_me, "escalated_to_me", "c-esc"),
      chip("yellow", c.yellow, "yellow", "c-yellow"),
      h("span", { class: "chip c-info", id: "chip-critical" }, t("chip.critical") + " " + c.critical),
      h("span", { class: "chip c-info", id: "chip-unaccepted" }, t("chip.unaccepted") + " " + c.unaccepted)]));
  }

  function renderWall() {
    const p = wallParams();
    renderFilters(p);
    const page = S.wall;
    if (!page) return;
    const closed = p.get("scope") === "closed";
    const away = p.get("scope") === "away";
    const list = p.get("view") === "list";
    const grid = S.user && S.user.role === "grid_worker";
    $("#wall-title").textContent = t(closed ? "wall.history" : away ? "wall.away" : grid ? "wall.mine" : "wall.open");
    $("#scope-away").hidden = grid;
    $("#wall-count").textContent = "(" + page.total + (page.total !== page.counts.scope_total ? " / " + page.counts.scope_total : "") + ")";
    renderUrgent(page.counts, closed || away);
    $("#wall-empty").textContent = t(closed ? "wall.empty_history" : away ? "wall.empty_away" : (page.counts.scope_total ? "wall.empty_filtered" : "wall.empty"));
    $("#wall-empty").hidden = page.items.length > 0;
    const canAct = !closed && !away && S.user && !["engineer", "grid_worker"].includes(S.user.role);
    $("#bulk").hidden = !canAct;
    const freshIds = S.fresh; S.fresh = new Set();
    const wall = $("#view-wall");
    keepFocus(wall, () => {
      $("#wall").hidden = list;
      $("#wall-list").hidden = !list;
      if (list) {
        $("#wall").replaceChildren();
        $("#wall-list thead").replaceChildren(h("tr", {}, canAct ? h("th", {}, "") : null,
          ["col.urgency", "f.severity", "f.rule", "f.camera", "f.zone", "f.state", "f.owner", closed ? "f.closed" : "f.reported",
            closed ? null : "col.waiting", "col.actions"].filter(Boolean).map((k) => h("th", {}, t(k)))));
        $("#wall-list tbody").replaceChildren(...page.items.map((inc) => row(inc, canAct, closed, freshIds.has(inc.id))));
      } else {
        $("#wall-list tbody").replaceChildren();
        $("#wall").replaceChildren(...page.items.map((inc) => card(inc, canAct, freshIds.has(inc.id))));
      }
      renderBulk();
    });
    $("#page-info").textContent = t("page.info").replace("{page}", page.page).replace("{pages}", page.pages).replace("{total}", page.total);
    $("#page-prev").disabled = page.page <= 1; $("#page-next").disabled = page.page >= page.pages;
    $("#pager").hidden = page.pages <= 1;
    const keep = new Set(page.items.map((i) => i.id)); if (S.detailId) keep.add(S.detailId); // occurrence thumbs ("occ:…") go too
    releaseThumbs(keep);
  }
  function renderBulk() {
    const n = S.selected.size;
    const acceptable = [...S.selected].filter((id) => (S.incidents.get(id) || { permitted_actions: [] }).permitted_actions.includes("accept"));
    const rejectable = [...S.selected].filter((id) => (S.incidents.get(id) || { permitted_actions: [] }).permitted_actions.includes("reject"));
    $("#bulk-count").textContent = t("bulk.selected").replace("{n}", n);
    $("#bulk-accept").disabled = acceptable.length === 0;
    $("#bulk-reject").disabled = rejectable.length === 0;
    if (!S.bulkConfirm) $("#bulk-reject").textContent = t("bulk.reject_duplicate");
    const items = S.wall ? S.wall.items : [];
    const sp = $("#select-page");
    sp.checked = items.length > 0 && items.every((i) => S.selected.has(i.id));
    sp.indeterminate = n > 0 && !sp.checked;
  }
  function selectBox(inc) {
    return h("input", { type: "checkbox", class: "pick", "data-key": inc.id + ":pick", "aria-label": t("bulk.pick"),
      checked: S.selected.has(inc.id),
      onchange: (e) => { if (e.target.checked) S.selected.add(inc.id); else S.selected.delete(inc.id); renderBulk(); } });
  }
  function urgencyBadge(inc) {
    if (inc.urgency === "red") return h("span", { class: "badge sla-red" }, t("sla.red"));
    if (inc.urgency === "escalated_to_me") return h("span", { class: "badge esc" }, t("urgency.escalated_to_me"));
    if (inc.urgency === "yellow") return h("span", { class: "badge sla-yellow" }, t("sla.yellow"));
    if (inc.sla_flag && inc.sla_flag !== "none") return h("span", { class: "badge sla-" + inc.sla_flag }, tr("sla", inc.sla_flag));
    return null;
  }
  function actionButtons(inc) {
    const canAccept = inc.permitted_actions.includes("accept");
    const resolvable = inc.permitted_actions.filter((a) => a !== "accept");
    return [
      canAccept ? h("button", { class: "primary accept", type: "button", "data-key": inc.id + ":accept", onclick: () => act(inc, "accept", {}) }, t("btn.accept")) : null,
      resolvable.length ? h("button", { class: "resolve", type: "button", "data-key": inc.id + ":resolve", onclick: () => openDialog(inc, null) }, t("btn.resolve")) : null,
      h("a", { href: "#/incident/" + encodeURIComponent(inc.id), class: "detail-link", "data-key": inc.id + ":detail" }, t("btn.detail"))];
  }
  function occBadge(inc) {
    const n = inc.occurrence_count || 1;
    return n > 1 ? h("span", { class: "badge occ", title: t("occ.title").replace("{n}", n) }, "×" + n) : null;
  }
  function ruleName(inc) { return tr("rt", inc.rule_type); }
  function age(iso) { return SECS((Date.now() - new Date(iso).getTime()) / 1000); }

  function card(inc, canAct, fresh) {
    const img = h("img", { class: "thumb", alt: camname(inc.camera_id) });
    setImg(img, inc);
    return h("article", { class: "incident sev-" + inc.severity + " u-" + inc.urgency + (fresh ? " fresh" : ""), "data-id": inc.id,
      "data-state": inc.state, "data-urgency": inc.urgency },
      h("a", { href: "#/incident/" + encodeURIComponent(inc.id), class: "thumb-link", tabindex: "-1" }, img),
      h("div", { class: "body" },
        h("div", { class: "title", title: inc.camera_id }, canAct ? selectBox(inc) : null, ruleName(inc), " · ", camname(inc.camera_id)),
        h("div", { class: "badges" },
          urgencyBadge(inc),
          h("span", { class: "badge sev-" + inc.severity }, tr("sev", inc.severity)),
          h("span", { class: "badge state", "data-state": inc.state }, tr("st", inc.state)),
          occBadge(inc)),
        h("div", { class: "meta" }, fmtTime(inc.reported_at), " · ", cname(inc.owner_centre_id), inc.zone ? [" · ", zoneLabel(inc)] : ""),
        h("div", { class: "actions" }, actionButtons(inc))));
  }
  function row(inc, canAct, closed, fresh) {
    return h("tr", { class: "incident-row sev-" + inc.severity + " u-" + inc.urgency + (fresh ? " fresh" : ""), "data-id": inc.id,
      "data-state": inc.state, "data-urgency": inc.urgency },
      canAct ? h("td", {}, selectBox(inc)) : null,
      h("td", {}, urgencyBadge(inc) || "—"),
      h("td", {}, h("span", { class: "badge sev-" + inc.severity }, tr("sev", inc.severity))),
      h("td", {}, ruleName(inc), " ", occBadge(inc)),
      h("td", { title: inc.camera_id }, camname(inc.camera_id)),
      h("td", {}, zoneLabel(inc) || "—"),
      h("td", {}, h("span", { class: "badge state", "data-state": inc.state }, tr("st", inc.state))),
      h("td", {}, cname(inc.owner_centre_id)),
      h("td", {}, fmtTime(closed ? inc.closed_at : inc.reported_at)),
      closed ? null : h("td", {}, age(inc.reported_at)),
      h("td", { class: "actions" }, actionButtons(inc)));
  }

  async function bulk(action) {
    const ids = [...S.selected].filter((id) => (S.incidents.get(id) || { permitted_actions: [] }).permitted_actions.includes(action));
    if (!ids.length) return;
    if (action === "reject" && !S.bulkConfirm) { // a second click confirms: a bulk rejection is not undone
      S.bulkConfirm = true;
      $("#bulk-reject").textContent = t("bulk.confirm").replace("{n}", ids.length);
      $("#bulk-reject").classList.add("danger");
      clearTimeout(S.bulkTimer);
      S.bulkTimer = setTimeout(() => { S.bulkConfirm = false; $("#bulk-reject").classList.remove("danger"); renderBulk(); }, 5000);
      return;
    }
    S.bulkConfirm = false; $("#bulk-reject").classList.remove("danger");
    const body = { action, note: "", items: ids.map((id) => ({ id, expected_version: S.incidents.get(id).version })) };
    if (action === "reject") body.reason = "duplicate";
    try {
      const r = await api("incidents/bulk", { method: "POST", json: body });
      $("#bulk-msg").textContent = t("bulk.result").replace("{done}", r.done).replace("{failed}", r.failed);
      for (const x of r.results) if (x.ok) S.selected.delete(x.id);
    } catch (e) { $("#bulk-msg").textContent = t("err.generic") + ": " + e.message; }
    await loadWall();
  }
  async function exportCsv() {
    const q = apiQuery(wallParams(), false);
    const res = await fetch(API + "/wall/export.csv?" + q.toString(), { headers: { Authorization: "Bearer " + S.token } });
    if (!res.ok) { $("#bulk-msg").textContent = t("err.generic") + ": " + res.status; return; }
    const url = URL.createObjectURL(await res.blob());
    const name = (/filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "") || [])[1] || "xueliang.csv";
    const a = h("a", { href: url, download: name }); document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async function act(inc, action, body) {
    try {
      const updated = await api("incidents/" + encodeURIComponent(inc.id) + "/" + action,
        { method: "POST", json: Object.assign({ note: "", expected_version: inc.version }, body) });
      onIncident(updated, "incident.transition");
      return null;
    } catch (e) {
      const msg = e.status === 403 ? t("err.forbidden") : e.status === 409 ? t("err.conflict") : t("err.generic");
      return msg + ": " + e.message;
    }
  }

  // The action dialog opens on the action the user chose (分拨 opens on 分拨); from the wall's
  // 处置… it opens on no action, and submit stays disabled until one is picked. Reason and
  // target show only for the actions that take them.
  function openDialog(inc, preset) {
    const fresh = S.incidents.get(inc.id);
    if (fresh && fresh.version > inc.version) inc = fresh; // a card not yet re-rendered after a change
    S.dialogFor = inc;
    const sel = $("#action-select");
    const actions = inc.permitted_actions.filter((a) => a !== "accept" || preset === "accept");
    const opts = actions.map((a) => h("option", { value: a }, tr("act", a)));
    if (!preset) opts.unshift(h("option", { value: "", disabled: true }, t("dlg.choose")));
    sel.replaceChildren(...opts);
    sel.value = preset && actions.includes(preset) ? preset : "";
    $("#action-title").textContent = ruleName(inc) + " · " + camname(inc.camera_id);
    $("#note-input").value = ""; $("#target-input").value = ""; $("#action-error").hidden = true;
    $("#reason-select").value = "false_alarm";
    $("#target-options").replaceChildren(
      ...(S.gridWorkers || []).map((w) => h("option", { value: w.username }, t("role.grid_worker") + " " + (w.display_name || w.username) + " @ " + cname(w.centre_id))),
      ...[...S.centres.entries()].filter(([id]) => id !== inc.owner_centre_id).map(([id, name]) => h("option", { value: id }, name)));
    syncDialog();
    $("#action-dialog").showModal();
    (preset ? (preset === "dispatch" ? $("#target-input") : $("#note-input")) : sel).focus();
  }
  function syncDialog() {
    const a = $("#action-select").value;
    $("#reason-row").hidden = a !== "reject";
    $("#target-row").hidden = a !== "dispatch";
    $("#target-input").required = a === "dispatch";
    $("#note-input").required = a === "return";
    $("#note-label").textContent = t(a === "return" ? "dlg.note_required" : "dlg.note");
    $("#action-submit").disabled = !a;
  }
  async function submitDialog(ev) {
    ev.preventDefault();
    const inc = S.dialogFor; const a = $("#action-select").value;
    if (!a) return;
    const body = { note: $("#note-input").value };
    if (a === "reject") body.reason = $("#reason-select").value;
    if (a === "dispatch") body.target = $("#target-input").value;
    const err = await act(inc, a, body);
    if (err) { $("#action-error").textContent = err; $("#action-error").hidden = false; return; }
    $("#action-dialog").close();
  }

  // ------------------------------------------------------------------ detail
  async function loadDetail(id) {
    S.detailId = id;
    let inc;
    try { inc = await api("incidents/" + encodeURIComponent(id)); }
    catch (e) { $("#detail").replaceChildren(h("p", { class: "error" }, e.message)); return; }
    const img = h("img", { id: "detail-snapshot", alt: camname(inc.camera_id),
      onclick: (e) => { // zoom 2.5x around the clicked point; click again to fit
        const r = e.target.getBoundingClientRect();
        e.target.style.transformOrigin = ((e.clientX - r.left) / r.width * 100) + "% " + ((e.clientY - r.top) / r.height * 100) + "%";
        e.target.classList.toggle("zoomed");
      } });
    setImg(img, inc);
    const kv = (pairs) => h("dl", { class: "kv" }, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== "")
      .map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]));
    const canUrge = S.user && SUPERVISORS.has(S.user.role) && OPEN_STATES.has(inc.state)
      && inc.owner_centre_id !== S.user.centre_id && inc.permitted_actions.length > 0; // above the owner
    const actions = inc.permitted_actions.map((a) => h("button", {
      type: "button", class: a === "accept" ? "primary" : "", "data-action": a,
      "data-key": "detail:" + a,
      onclick: () => a === "accept" ? act(inc, "accept", {}).then(() => loadDetail(id)) : openDialog(inc, a),
    }, tr("act", a)));
    const timeline = h("ol", { class: "timeline" },
      h("li", {}, fmtTime(inc.started_at), " — ", t("f.started")),
      inc.audit.map((a) => { const n = auditNote(a, inc); return h("li", {}, fmtTime(a.at), " — ", tr("act", a.action), " → ", tr("st", a.to_state), " (", actorOf(a), a.centre_id ? " @ " + cname(a.centre_id) : "", ")", n && n.length !== 0 ? ["：", n] : ""); }));
    const audit = h("table", { class: "grid-table", id: "audit" },
      h("thead", {}, h("tr", {}, ["audit.at", "audit.actor", "audit.centre", "audit.action", "audit.from", "audit.to", "audit.note"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, inc.audit.map((a) => h("tr", {}, h("td", {}, fmtTime(a.at)), h("td", {}, actorOf(a)),
        h("td", {}, cname(a.centre_id)), h("td", {}, tr("act", a.action)), h("td", {}, a.from_state ? tr("st", a.from_state) : "—"),
        h("td", {}, tr("st", a.to_state)), h("td", {}, auditNote(a, inc))))));
    keepFocus($("#detail"), () => $("#detail").replaceChildren(h("div", { class: "detail" },
      h("div", {}, h("div", { id: "clip-box", hidden: true }, h("h3", {}, t("detail.clip")),
        h("video", { id: "detail-clip", controls: true, muted: true, playsinline: true, preload: "auto" })),
        h("h3", {}, t("detail.snapshot")),
        h("div", { class: "zoom-box", title: t("detail.zoom") }, img)),
      h("div", {},
        h("h2", {}, tr("rt", inc.rule_type), " · ", ruleLabel(inc)),
        h("div", { class: "actions" }, actions, canUrge ? h("button", { type: "button", class: "urge", "data-key": "detail:urge",
          onclick: () => openUrge(inc) }, t("urge.submit")) : null),
        inc.permitted_actions.length === 0 && OPEN_STATES.has(inc.state) ? h("p", { class: "muted", id: "read-only" }, t("detail.read_only")) : null,
        kv([["f.severity", h("span", { class: "badge sev-" + inc.severity }, tr("sev", inc.severity))],
          ["f.state", h("span", { class: "badge", id: "detail-state", "data-state": inc.state }, tr("st", inc.state))],
          ["f.sla", tr("sla", inc.sla_flag)], ["f.camera", [camname(inc.camera_id), S.cameras.has(inc.camera_id) ? [" (", ident(inc.camera_id), ")"] : ""]], ["f.zone", zoneLabel(inc)],
          ["f.owner", cname(inc.owner_centre_id)], ["f.grid", cname(inc.grid_centre_id)], ["f.started", fmtTime(inc.started_at)],
          ["f.reported", fmtTime(inc.reported_at)], ["f.accept_due", fmtTime(inc.accept_due_at)],
          ["f.close_due", fmtTime(inc.close_due_at)], ["f.escalation", String(inc.escalation_level)],
          ["f.occurrences", inc.occurrence_count > 1 ? inc.occurrence_count + " · " + t("f.last_occurrence") + " " + fmtTime(inc.last_occurrence_at) : null],
          ["f.target", inc.dispatch_target ? targetName(inc.dispatch_target) : null],
          ["f.reject_reason", inc.reject_reason ? tr("reason", inc.reject_reason) : null],
          ["f.classes", classesOf(inc)], ["f.details", detailsOf(inc)]]),
        h("h3", {}, t("detail.timeline")), timeline)),
      occurrences(inc) || "",
      h("h3", {}, t("detail.audit")), h("div", { class: "table-wrap" }, audit)));
    loadClip(inc).catch((e) => console.warn("clip", e));
  }

  // the evidence clip of the latest occurrence (named like its snapshot), fetched with the bearer token
  async function loadClip(inc) {
    const m = /\/snapshots\/([^/]+)\.(?:jpg|jpeg|png)$/.exec(inc.snapshot_url || "");
    const id = m ? m[1] : inc.id;
    if (S.clip && S.clip.id === id) { showClip(S.clip.url); return; }
    const res = await fetch("/clips/" + encodeURIComponent(id) + ".mp4", { headers: { Authorization: "Bearer " + S.token } });
    if (!res.ok) return; // none (yet): recorded a few seconds after the incident
    if (S.clip) URL.revokeObjectURL(S.clip.url);
    S.clip = { id, url: URL.createObjectURL(await res.blob()) };
    if (S.detailId === inc.id) showClip(S.clip.url);
  }
  function showClip(url) {
    const v = $("#detail-clip");
    if (!v) return;
    if (v.src !== url) v.src = url;
    $("#clip-box").hidden = false;
  }

  // 事件归并: the repeated alarms merged into this case, newest first, each with its own snapshot
  function occurrences(inc) {
    const list = inc.occurrences || [];
    if (inc.occurrence_count <= 1 || !list.length) return null;
    const shown = list.slice(0, 24);
    return h("section", { id: "occurrences" },
      h("h3", {}, t("detail.occurrences") + " (" + inc.occurrence_count + ")"),
      h("div", { class: "occ-grid" }, shown.map((o, i) => {
        const img = h("img", { class: "occ-thumb", alt: fmtTime(o.occurred_at) });
        if (o.snapshot_url) setImg(img, { id: "occ:" + o.incident_id, snapshot_url: o.snapshot_url, revision: o.revision });
        return h("figure", { class: "occ", "data-id": o.incident_id },
          img, h("figcaption", {}, "#" + (inc.occurrence_count - i) + " · " + fmtTime(o.occurred_at) + " · ",
            h("span", { class: "badge sev-" + o.severity }, tr("sev", o.severity))));
      })),
      list.length < inc.occurrence_count || shown.length < list.length
        ? h("p", { class: "muted" }, t("detail.occurrences_more").replace("{n}", shown.length)) : null);
  }

  // ------------------------------------------------------------------ supervision (督办) and inbox
  const SUPERVISORS = new Set(["supervisor", "admin"]);
  async function loadInboxCount() {
    if (!S.user || S.user.role === "engineer" || S.user.role === "grid_worker") return;
    const unread = await api("centres/" + encodeURIComponent(S.user.centre_id) + "/notifications?unread_only=true&limit=500");
    const b = $("#inbox-count");
    b.textContent = String(unread.length); b.hidden = unread.length === 0;
  }
  function noteText(n) {
    // system notes are built in the dispatcher; show them by kind in the user's language, people's notes as written
    const m = n.kind === "urge" ? /^(\S+) @ (\S+): ([\s\S]*)$/.exec(n.note) : null;
    if (m) return [t("notif.urge") + " (", ident(m[1]), " @ ", cname(m[2]), ")：", m[3]];
    if (n.kind === "urge") return [t("notif.urge"), "：", n.note];
    return t("notif." + n.kind) !== "notif." + n.kind ? t("notif." + n.kind) : n.kind;
  }
  async function loadSupervise() {
    const sup = S.user && SUPERVISORS.has(S.user.role);
    $("#sup-kpi-block").hidden = !sup;
    const centre = encodeURIComponent(S.user.centre_id);
    const jobs = [api("centres/" + centre + "/notifications?limit=100")];
    if (sup) {
      const since = new Date(Date.now() - Number($("#sup-window").value) * 1000).toISOString();
      jobs.push(api("centres/" + centre + "/kpis/children?since=" + encodeURIComponent(since)));
      jobs.push(api("wall?sla_flag=red&sla_flag=yellow&page_size=100"));
    }
    const [notes, kids, overdue] = await Promise.all(jobs);
    $("#inbox").replaceChildren(...notes.map((n) => h("li", { class: n.read_at ? "read" : "unread", "data-id": String(n.id), "data-kind": n.kind },
      h("span", { class: "muted" }, fmtTime(n.at)), " ",
      h("span", { class: "badge notif-" + n.kind }, t("notifk." + n.kind) !== "notifk." + n.kind ? t("notifk." + n.kind) : n.kind), " ",
      h("a", { href: "#/incident/" + encodeURIComponent(n.incident_id) }, noteText(n)))));
    $("#inbox-empty").hidden = notes.length > 0;
    $("#inbox-read").disabled = !notes.some((n) => !n.read_at);
    S.inbox = notes;
    if (!sup) return;
    $("#sup-kpis thead").replaceChildren(h("tr", {}, ["sup.rank", "sup.centre", "sup.total", "sup.open", "chip.unaccepted",
      "kpi.accept_p50", "kpi.overdue", "kpi.false_alarm", "kpi.escalations"].map((k) => h("th", {}, t(k)))));
    $("#sup-kpis tbody").replaceChildren(...kids.map((k) => h("tr", { "data-centre": k.centre_id, class: k.overdue_rate ? "warn" : "" },
      h("td", {}, String(k.rank)), h("td", {}, k.name), h("td", {}, String(k.total)), h("td", {}, String(k.open)),
      h("td", {}, String(k.unaccepted)), h("td", {}, SECS(k.accept_p50_s)), h("td", { class: "overdue-rate" }, pct(k.overdue_rate)),
      h("td", {}, pct(k.false_alarm_rate)), h("td", {}, String(k.escalations)))));
    $("#sup-kpis-empty").hidden = kids.length > 0;
    $("#sup-overdue thead").replaceChildren(h("tr", {}, ["col.urgency", "f.severity", "f.rule", "f.camera", "f.owner", "f.state",
      "col.waiting", "col.actions"].map((k) => h("th", {}, t(k)))));
    $("#sup-overdue tbody").replaceChildren(...overdue.items.map((inc) => h("tr", { class: "incident-row", "data-id": inc.id },
      h("td", {}, urgencyBadge(inc) || "—"), h("td", {}, h("span", { class: "badge sev-" + inc.severity }, tr("sev", inc.severity))),
      h("td", {}, ruleName(inc)), h("td", {}, camname(inc.camera_id)), h("td", {}, cname(inc.owner_centre_id)),
      h("td", {}, tr("st", inc.state)), h("td", {}, age(inc.reported_at)),
      h("td", { class: "actions" },
        inc.owner_centre_id !== S.user.centre_id ? h("button", { type: "button", class: "urge", "data-key": inc.id + ":urge",
          onclick: () => openUrge(inc) }, t("urge.submit")) : null,
        h("a", { href: "#/incident/" + encodeURIComponent(inc.id) }, t("btn.detail"))))));
    $("#sup-overdue-empty").hidden = overdue.items.length > 0;
  }
  function openUrge(inc) {
    S.urgeFor = inc;
    $("#urge-title").textContent = t("urge.title") + " · " + cname(inc.owner_centre_id) + " · " + ruleName(inc) + " · " + camname(inc.camera_id);
    $("#urge-note").value = ""; $("#urge-error").hidden = true;
    $("#urge-dialog").showModal(); $("#urge-note").focus();
  }
  async function submitUrge(ev) {
    ev.preventDefault();
    try {
      await api("incidents/" + encodeURIComponent(S.urgeFor.id) + "/urge", { method: "POST", json: { note: $("#urge-note").value } });
      $("#urge-dialog").close();
      $("#bulk-msg").textContent = "";
      if (S.view === "supervise") loadSupervise().catch((e) => console.warn("supervise", e));
      if (S.view === "detail") loadDetail(S.urgeFor.id);
    } catch (e) {
      $("#urge-error").textContent = (e.status === 403 ? t("err.forbidden") : e.status === 409 ? t("err.conflict") : t("err.generic")) + ": " + e.message;
      $("#urge-error").hidden = false;
    }
  }
  async function markInboxRead() {
    const ids = (S.inbox || []).filter((n) => !n.read_at).map((n) => n.id);
    if (!ids.length) return;
    await api("centres/" + encodeURIComponent(S.user.centre_id) + "/notifications/read", { method: "POST", json: { ids } });
    await Promise.all([loadSupervise(), loadInboxCount()]);
  }

  // ------------------------------------------------------------------ coverage planning (engineers)
  const PLANNERS = new Set(["engineer", "admin"]);
  function loadPlan() {
    const sel = $("#plan-centre");
    const want = sel.value || (S.user ? S.user.centre_id : "");
    sel.replaceChildren(...[...S.centres.entries()].map(([id, name]) => h("option", { value: id }, name)));
    sel.value = S.centres.has(want) ? want : (S.user ? S.user.centre_id : "");
    if (S.plan) renderPlan(S.plan);
  }
  async function readGeoJson(input) {
    const f = input.files && input.files[0];
    if (!f) throw new Error(t("plan.no_file"));
    const fc = JSON.parse(await f.text());
    if (!fc || fc.type !== "FeatureCollection") throw new Error(t("plan.not_fc") + ": " + f.name);
    return fc;
  }
  async function runPlan(ev) {
    ev.preventDefault();
    $("#plan-error").hidden = true;
    let body;
    try {
      body = { demand: await readGeoJson($("#plan-demand")), candidates: await readGeoJson($("#plan-candidates")),
        options: { k: Number($("#plan-k").value), spacing_m: Number($("#plan-spacing").value || 0) },
        centre_id: $("#plan-centre").value || undefined };
      if ($("#plan-layer").value) body.layer = $("#plan-layer").value;
    } catch (e) { $("#plan-error").textContent = e.message; $("#plan-error").hidden = false; return; }
    const t0 = Date.now();
    $("#plan-run").disabled = true;
    const bar = $("#plan-bar"); bar.hidden = false; bar.value = 0;
    try {
      // a job with progress: the planner's stages and share done, polled until it ends
      let job = await api("coverage/jobs", { method: "POST", json: body });
      while (job.state === "running") {
        bar.value = job.fraction;
        $("#plan-progress").textContent = stageName(job.stage) + " · " + Math.round(100 * job.fraction) + "% · "
          + t("plan.running").replace("{s}", Math.round((Date.now() - t0) / 1000));
        await new Promise((ok) => setTimeout(ok, 300));
        job = await api("coverage/jobs/" + job.id);
      }
      if (job.state !== "done") throw new Error(typeof job.error === "string" ? job.error : (job.error || []).map((e) => e.msg).join("; "));
      S.plan = job.result;
      bar.value = 1;
      renderPlan(S.plan);
      $("#plan-progress").textContent = t("plan.done").replace("{s}", ((Date.now() - t0) / 1000).toFixed(1));
    } catch (e) {
      $("#plan-error").textContent = t("err.generic") + ": " + e.message; $("#plan-error").hidden = false;
      $("#plan-progress").textContent = "";
    } finally { $("#plan-run").disabled = false; }
  }
  const STAGES = ["reading inputs", "existing cameras", "candidate visibility", "optimising", "blind spots and report", "done", "queued"];
  function stageName(stage) {
    const key = STAGES.find((k) => (stage || "").startsWith(k));
    return key ? t("stage." + key.replace(/ /g, "_")) : t("stage.running");
  }
  function renderPlan(r) {
    const rep = r.report;
    $("#plan-result").hidden = false;
    const st = r.plan.status === "optimal" ? t("plan.optimal") : t("plan.within").replace("{gap}", (100 * r.plan.gap).toFixed(2));
    $("#plan-status").textContent = st + " · " + t("plan.k_used").replace("{used}", r.plan.k_used).replace("{asked}", r.plan.k_requested ?? "—")
      + (r.plan.everything_coverable_covered ? " · " + t("plan.all_covered") : "");
    $("#plan-before").textContent = pct(rep.before.share); $("#plan-after").textContent = pct(rep.after.share);
    $("#plan-before-bar").style.width = (100 * rep.before.share).toFixed(1) + "%";
    $("#plan-after-bar").style.width = (100 * rep.after.share).toFixed(1) + "%";
    $("#plan-poles thead").replaceChildren(h("tr", {}, ["plan.rank", "plan.site", "plan.heading", "plan.cost", "plan.gain", "plan.cumulative"].map((k) => h("th", {}, t(k)))));
    $("#plan-poles tbody").replaceChildren(...r.recommended.features.filter((f) => f.properties.kind === "camera").map((f) => {
      const p = f.properties;
      return h("tr", { "data-site": p.site }, h("td", {}, String(p.rank)), h("td", {}, ident(p.site)),
        h("td", {}, Math.round(p.heading_deg) + "°"), h("td", {}, String(p.cost)), h("td", {}, Number(p.marginal_weight).toFixed(1)),
        h("td", {}, pct(p.cumulative_share)));
    }));
    $("#plan-blind thead").replaceChildren(h("tr", {}, ["plan.rank", "plan.weight", "plan.categories", "plan.fixed", "plan.state"].map((k) => h("th", {}, t(k)))));
    $("#plan-blind tbody").replaceChildren(...r.blind_spots.features.map((f) => {
      const p = f.properties, fixed = p.covered_after_share ?? 0;
      const cls = fixed >= 0.9 ? "fixed" : fixed >= 0.3 ? "partly" : "left";
      return h("tr", { class: "blind-" + cls, "data-state": cls }, h("td", {}, String(p.rank)), h("td", {}, Number(p.weight).toFixed(1)),
        h("td", {}, Object.keys(p.categories || {}).map((c) => tr("cat", c)).join(S.lang === "zh" ? "、" : ", ")),
        h("td", {}, pct(fixed)), h("td", {}, h("span", { class: "badge bs-" + cls }, t("plan.bs." + cls))));
    }));
  }
  function downloadPlan() {
    if (!S.plan) return;
    const fc = { type: "FeatureCollection", features: [...S.plan.recommended.features, ...S.plan.blind_spots.features.map((f) =>
      ({ ...f, properties: { ...f.properties, kind: "blind_spot" } }))], properties: { report: S.plan.report, plan: S.plan.plan } };
    const url = URL.createObjectURL(new Blob([JSON.stringify(fc)], { type: "application/geo+json" }));
    const a = h("a", { href: url, download: "xueliang-plan.geojson" }); document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ------------------------------------------------------------------ cameras
  async function loadCameras() {
    const [cams, rate, trend] = await Promise.all([api("cameras?limit=500"), api("cameras/online-rate?window_s=86400"),
      api("cameras/trend?hours=24").catch(() => ({ cameras: [] }))]);
    const trendOf = new Map(trend.cameras.map((c) => [c.camera_id, c.intact_rate]));
    const byId = new Map(rate.cameras.map((c) => [c.camera_id, c]));
    $("#cam-summary").textContent = t("cam.summary") + ": " + t("cam.online_rate") + " " + pct(rate.online_rate)
      + " · " + t("cam.intact_rate") + " " + pct(rate.intact_rate) + " · " + t("cam.window") + " " + t("cam.24h");
    $("#cam-table thead").replaceChildren(h("tr", {}, ["cam.id", "cam.name", "cam.village", "cam.status", "cam.faults",
      "cam.scores", "cam.fps", "cam.online_rate", "cam.intact_rate", "cam.trend"].map((k) => h("th", {}, t(k)))));
    $("#cam-table tbody").replaceChildren(...cams.map((c) => {
      const r = byId.get(c.id) || {};
      const scores = Object.entries(c.quality_scores || {}).map(([k, v]) => tr("fault", k) + " " + Number(v).toFixed(2)).join(", ");
      return h("tr", { "data-camera": c.id },
        h("td", {}, ident(c.id)), h("td", {}, c.name), h("td", {}, cname(c.village_id)),
        h("td", {}, h("span", { class: "badge cs-" + (c.status || "unknown") }, c.status ? tr("cs", c.status) : t("cam.unknown"))),
        h("td", {}, c.faults.length ? c.faults.map((f) => tr("fault", f)).join(", ") : t("cam.none")),
        h("td", { class: "muted" }, scores || "—"), h("td", {}, c.fps !== null ? Number(c.fps).toFixed(1) : "—"),
        h("td", {}, pct(r.online_rate)), h("td", {}, pct(r.intact_rate)), h("td", {}, spark(trendOf.get(c.id) || [])));
    }));
  }

  // 24 hourly bars of 完好率 (green intact, yellow partly, red none, grey unknown)
  function spark(values) {
    const g = s("svg", { class: "spark", viewBox: "0 0 " + (values.length * 4) + " 16", width: values.length * 4, height: 16,
      role: "img", "aria-label": t("cam.trend") });
    values.forEach((v, i) => {
      const hgt = v === null ? 16 : Math.max(2, 16 * v);
      const fill = v === null ? "#37474f" : v >= 0.95 ? "#4caf50" : v >= 0.5 ? "#f5c518" : "#e53935";
      g.append(s("rect", { x: i * 4, y: 16 - hgt, width: 3, height: hgt, fill, "data-v": v === null ? "" : v.toFixed(2) }));
    });
    return g;
  }

  // ------------------------------------------------------------------ map
  async function loadMap() {
    const [fc, open] = await Promise.all([api("map"), api("wall?page_size=200").catch(() => ({ items: [] }))]);
    $("#map-popup").hidden = true;
    const svg = $("#map");
    svg.replaceChildren();
    const present = new Set(fc.features.map((f) => f.properties.kind));
    $("#map-legend").replaceChildren(...[["camera", "l-camera", "map.legend.camera"], ["sector", "l-sector", "map.legend.sector"],
      ["coverage", "l-coverage", "map.legend.coverage"], ["blind", "l-blind", "map.legend.blind"],
      ["candidate", "l-candidate", "map.legend.candidate"]]
      .filter(([kind]) => present.has(kind)).map(([, c, k]) => h("span", {}, h("i", { class: c }), t(k))));
    const pts = [];
    const walk = (g) => {
      if (!g) return;
      if (g.type === "Point") pts.push(g.coordinates);
      else if (g.type === "Polygon") g.coordinates.forEach((r) => pts.push(...r));
      else if (g.type === "MultiPolygon") g.coordinates.forEach((p) => p.forEach((r) => pts.push(...r)));
      else if (g.type === "LineString") pts.push(...g.coordinates);
    };
    fc.features.forEach((f) => walk(f.geometry));
    $("#map-empty").hidden = pts.length > 0;
    if (!pts.length) return;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [x, y] of pts) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    const kx = Math.cos(((y0 + y1) / 2) * Math.PI / 180); // equirectangular, true scale at the centre latitude
    const w = Math.max((x1 - x0) * kx, 1e-6), hgt = Math.max(y1 - y0, 1e-6);
    const scale = Math.min(940 / w, 640 / hgt);
    const ox = 30 + (940 - w * scale) / 2, oy = 30 + (640 - hgt * scale) / 2;
    const P = ([x, y]) => [(ox + (x - x0) * kx * scale).toFixed(1), (oy + (y1 - y) * scale).toFixed(1)];
    const ring = (r) => "M" + r.map((p) => P(p).join(",")).join("L") + "Z";
    const path = (g) => g.type === "Polygon" ? g.coordinates.map(ring).join("")
      : g.type === "MultiPolygon" ? g.coordinates.map((p) => p.map(ring).join("")).join("") : "";
    const layers = { coverage: s("g", { id: "layer-coverage" }), blind: s("g", { id: "layer-blind" }),
      candidate_view: s("g", { id: "layer-candidate-views" }), sector: s("g", { id: "layer-sectors" }),
      camera: s("g", { id: "layer-cameras" }), candidate: s("g", { id: "layer-candidates" }) };
    const cams = new Map(), byCam = new Map();
    for (const inc of open.items) { if (!byCam.has(inc.camera_id)) byCam.set(inc.camera_id, []); byCam.get(inc.camera_id).push(inc); }
    const style = { coverage: ["rgba(76,175,80,0.30)", "#4caf50"], blind: ["rgba(229,57,53,0.40)", "#e53935"],
      sector: ["rgba(58,160,255,0.28)", "#3aa0ff"], candidate_view: ["rgba(245,197,24,0.15)", "#f5c518"] };
    for (const f of fc.features) {
      const kind = f.properties.kind;
      if (f.geometry.type === "Point") {
        const [x, y] = P(f.geometry.coordinates);
        const colour = kind === "candidate" ? "#f5c518" : ({ online: "#4caf50", degraded: "#f5c518", offline: "#e53935" }[f.properties.status] || "#ffffff");
        const g = s("g", { class: "map-" + kind, "data-id": f.properties.id || "" });
        g.append(s("circle", { cx: x, cy: y, r: 6, fill: colour, stroke: "#000", "stroke-width": 1.5 }));
        if (kind === "camera") {
          cams.set(f.properties.id, [Number(x), Number(y)]);
          g.addEventListener("click", () => popup(Number(x), Number(y), cameraPopup(f.properties, byCam.get(f.properties.id) || [])));
        } else if (kind === "candidate") {
          g.addEventListener("click", () => popup(Number(x), Number(y), candidatePopup(f.properties)));
        }
        const label = s("text", { x: Number(x) + 9, y: Number(y) - 8, fill: "#e6edf3", "font-size": 13, class: f.properties.name ? "" : "ident" });
        label.textContent = f.properties.name || f.properties.id || (f.properties.site ? "+" + f.properties.site : "");
        g.append(label);
        (layers[kind] || layers.camera).append(g);
      } else if (layers[kind]) {
        const [fill, stroke] = style[kind] || ["rgba(255,255,255,0.1)", "#fff"];
        const attrs = { d: path(f.geometry), fill, stroke, "stroke-width": 1, "fill-rule": "evenodd", class: "map-" + kind };
        if (kind === "candidate_view") attrs["stroke-dasharray"] = "5 4";
        layers[kind].append(s("path", attrs));
      }
    }
    // open incidents at their camera: a marker per incident (most urgent first), coloured by grade, red-ringed when overdue
    const incidents = s("g", { id: "layer-incidents" });
    const SEV_FILL = { general: "#4caf50", serious: "#f5c518", major: "#ff8c1a", critical: "#e53935" };
    for (const [cam, list] of byCam) {
      const at = cams.get(cam);
      if (!at) continue;
      list.slice(0, 8).forEach((inc, i) => {
        const mx = at[0] - 10 + (i % 4) * 9, my = at[1] + 14 + Math.floor(i / 4) * 9;
        const m = s("rect", { x: mx, y: my, width: 8, height: 8, rx: 2, fill: SEV_FILL[inc.severity] || "#fff",
          stroke: inc.urgency === "red" ? "#ff1744" : "#000", "stroke-width": inc.urgency === "red" ? 2.5 : 1,
          class: "map-incident", "data-id": inc.id, "data-urgency": inc.urgency });
        m.addEventListener("click", (e) => { e.stopPropagation(); popup(mx, my, incidentPopup(inc)); });
        incidents.append(m);
      });
    }
    svg.append(layers.coverage, layers.blind, layers.candidate_view, layers.sector, layers.camera, layers.candidate, incidents);
    // scale bar: 50 m
    const m50 = 50 / 111320 * kx * scale;
    const bar = s("g", {});
    bar.append(s("line", { x1: 30, y1: 680, x2: 30 + m50, y2: 680, stroke: "#e6edf3", "stroke-width": 3 }));
    const bt = s("text", { x: 36 + m50, y: 684, fill: "#8b9bb0", "font-size": 12 }); bt.textContent = "50 m";
    bar.append(bt); svg.append(bar);
  }

  function popup(x, y, content) {
    const box = $("#map-popup"), svg = $("#map");
    const r = svg.getBoundingClientRect(), k = r.width / 1000;
    box.replaceChildren(h("button", { type: "button", class: "link popup-close", "aria-label": t("btn.dismiss"),
      onclick: () => { box.hidden = true; } }, "×"), content);
    box.style.left = Math.min(x * k + 12, Math.max(0, r.width - 280)) + "px";
    box.style.top = (y * k + 12) + "px";
    box.hidden = false;
  }
  function incidentPopup(inc) {
    return h("div", { class: "popup-body", "data-id": inc.id },
      h("b", {}, tr("rt", inc.rule_type), " · ", camname(inc.camera_id)),
      h("div", {}, urgencyBadge(inc), h("span", { class: "badge sev-" + inc.severity }, tr("sev", inc.severity)),
        h("span", { class: "badge" }, tr("st", inc.state))),
      h("div", { class: "muted" }, fmtTime(inc.reported_at), " · ", cname(inc.owner_centre_id)),
      h("a", { href: "#/incident/" + encodeURIComponent(inc.id), class: "popup-detail" }, t("btn.detail")));
  }
  function cameraPopup(p, list) {
    return h("div", { class: "popup-body", "data-camera": p.id },
      h("b", {}, p.name || ident(p.id)),
      h("div", {}, h("span", { class: "badge cs-" + (p.status || "unknown") }, p.status ? tr("cs", p.status) : t("cam.unknown"))),
      h("div", { class: "muted" }, t("map.open_here").replace("{n}", list.length)),
      list.slice(0, 5).map((inc) => h("div", {}, h("a", { href: "#/incident/" + encodeURIComponent(inc.id) },
        tr("sev", inc.severity), " · ", tr("rt", inc.rule_type), " · ", fmtTime(inc.reported_at)))));
  }
  function candidatePopup(p) {
    return h("div", { class: "popup-body" }, h("b", {}, t("map.legend.candidate"), " ", ident(String(p.site || p.id || ""))),
      p.rank !== undefined ? h("div", {}, t("plan.rank") + " " + p.rank) : null,
      p.marginal_weight !== undefined ? h("div", {}, t("plan.gain") + " " + Number(p.marginal_weight).toFixed(1)) : null,
      p.cost !== undefined ? h("div", {}, t("plan.cost") + " " + p.cost) : null);
  }

  // ------------------------------------------------------------------ routing
  function show(view) {
    S.view = view;
    document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== "view-" + view; });
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.id === "nav-" + view));
    $("#topbar").hidden = view === "login";
  }
  function route() {
    const hash = location.hash || "#/wall";
    if (!S.token) { show("login"); $("#banner").hidden = true; return; }
    renderBanner();
    if (hash.startsWith("#/incident/")) { show("detail"); loadDetail(decodeURIComponent(hash.slice(11))); }
    else if (hash === "#/cameras") { show("cameras"); loadCameras().catch((e) => console.error(e)); }
    else if (hash === "#/map") { show("map"); loadMap().catch((e) => console.error(e)); }
    else if (hash === "#/plan") { show("plan"); loadPlan(); }
    else if (hash === "#/supervise") { show("supervise"); loadSupervise().catch((e) => console.error(e)); loadInboxCount().catch(() => {}); }
    else { S.detailId = null; if (S.clip) { URL.revokeObjectURL(S.clip.url); S.clip = null; } $("#detail-back").setAttribute("href", hash.startsWith("#/wall") ? hash : "#/wall"); show("wall"); renderWall(); loadWall().catch((e) => console.warn("wall", e)); }
  }
  function whoami() {
    $("#whoami").replaceChildren(...(S.user ? [ident(S.user.username), " · " + tr("role", S.user.role) + " @ " + cname(S.user.centre_id)] : []));
  }
  async function start() {
    await loadCentres();
    whoami();
    $("#nav-supervise").hidden = !S.user || S.user.role === "engineer" || S.user.role === "grid_worker";
    if (S.user && ["operator", "supervisor", "admin"].includes(S.user.role))
      api("centres/" + encodeURIComponent(S.user.centre_id) + "/grid-workers").then((w) => { S.gridWorkers = w; }).catch(() => {});
    $("#nav-plan").hidden = !S.user || !PLANNERS.has(S.user.role);
    loadInboxCount().catch(() => {});
    if (!location.hash || location.hash === "#/login") location.hash = "#/wall";
    route();
    connectFeed();
  }

  document.addEventListener("DOMContentLoaded", () => {
    applyI18n();
    $("#login-form").addEventListener("submit", login);
    $("#logout").addEventListener("click", logout);
    const toggle = () => {
      S.lang = S.lang === "zh" ? "en" : "zh"; localStorage.setItem("xl.lang", S.lang); applyI18n();
      if (S.token) { whoami(); S.kpiAt = 0; route(); }
    };
    $("#sound").addEventListener("click", () => { S.sound = !S.sound; localStorage.setItem("xl.sound", S.sound ? "on" : "off"); applyI18n(); });
    // wall filters, scope, view, paging, bulk and export
    $("#wall-filters").addEventListener("submit", (e) => e.preventDefault());
    for (const [id, key] of [["#f-severity", "severity"], ["#f-sla", "sla"], ["#f-state", "state"], ["#f-rule-type", "rule_type"], ["#f-camera", "camera"]])
      $(id).addEventListener("change", (e) => setWallParams({ [key]: e.target.value }));
    $("#f-q").addEventListener("input", (e) => { clearTimeout(S.qTimer); S.qTimer = setTimeout(() => setWallParams({ q: e.target.value.trim() }), 300); });
    $("#f-clear").addEventListener("click", () => { const p = wallParams(); setWallParams({ q: null, severity: null, sla: null, state: null, rule_type: null, camera: null, scope: p.get("scope"), view: p.get("view") }); });
    document.querySelectorAll("[data-scope]").forEach((b) => b.addEventListener("click", () => { S.selected.clear(); setWallParams({ scope: b.dataset.scope === "open" ? null : b.dataset.scope, state: null }); }));
    document.querySelectorAll("[data-mode]").forEach((b) => b.addEventListener("click", () => setWallParams({ view: b.dataset.mode === "cards" ? null : b.dataset.mode }, true)));
    $("#page-prev").addEventListener("click", () => setWallParams({ page: String(Math.max(1, (S.wall ? S.wall.page : 1) - 1)) }, true));
    $("#page-next").addEventListener("click", () => setWallParams({ page: String((S.wall ? S.wall.page : 1) + 1) }, true));
    $("#select-page").addEventListener("change", (e) => {
      for (const i of (S.wall ? S.wall.items : [])) { if (e.target.checked) S.selected.add(i.id); else S.selected.delete(i.id); }
      renderWall();
    });
    $("#bulk-accept").addEventListener("click", () => bulk("accept"));
    $("#bulk-reject").addEventListener("click", () => bulk("reject"));
    $("#export").addEventListener("click", () => exportCsv().catch((e) => console.warn("export", e)));
    $("#urge-form").addEventListener("submit", submitUrge);
    $("#plan-form").addEventListener("submit", (e) => runPlan(e).catch((x) => console.warn("plan", x)));
    $("#plan-download").addEventListener("click", downloadPlan);
    $("#urge-cancel").addEventListener("click", () => $("#urge-dialog").close());
    $("#inbox-read").addEventListener("click", () => markInboxRead().catch((e) => console.warn("inbox", e)));
    $("#sup-window").addEventListener("change", () => loadSupervise().catch((e) => console.warn("supervise", e)));
    $("#lang").addEventListener("click", toggle); $("#lang-login").addEventListener("click", toggle);
    $("#action-select").addEventListener("change", syncDialog);
    $("#action-form").addEventListener("submit", submitDialog);
    $("#action-cancel").addEventListener("click", () => $("#action-dialog").close());
    window.addEventListener("hashchange", route);
    if (S.token) start(); else show("login");
  });
})();
