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
    centres: new Map(),     // centre id -> name (your subtree)
    cameras: new Map(),     // camera id -> name
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
  function cname(id) { return id ? (S.centres.get(id) || id) : "—"; }
  async function loadCentres() {
    const walk = (n) => { S.centres.set(n.id, n.name); n.children.forEach(walk); };
    try { walk(await api("centres")); } catch (e) { console.warn("centres", e); }
    try { for (const c of await api("cameras")) if (c.name) S.cameras.set(c.id, c.name); } catch (e) { console.warn("cameras", e); }
  }
  function camname(id) { return S.cameras.get(id) || id; }
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
    if (S.thumbs.has(key)) return S.thumbs.get(key);
    const res = await fetch(inc.snapshot_url, { headers: { Authorization: "Bearer " + S.token } });
    if (!res.ok) return null;
    const url = URL.createObjectURL(await res.blob());
    S.thumbs.set(key, url);
    return url;
  }
  function setImg(img, inc) {
    thumb(inc).then((url) => { if (url) { img.src = url; img.classList.add("loaded"); } })
      .catch((e) => console.warn("snapshot", inc.id, e));
  }

  function applyI18n() {
    document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.title = t("app.title");
  }

  function cue() {
    // visual: banner; sound: a short two-tone beep (WebAudio, no asset needed)
    const b = $("#banner"); b.textContent = t("wall.new"); b.hidden = false;
    clearTimeout(cue.timer); cue.timer = setTimeout(() => { b.hidden = true; }, 4000);
    try {
      S.audio = S.audio || new (window.AudioContext || window.webkitAudioContext)();
      const ctx = S.audio;
      [880, 660].forEach((f, i) => {
        const o = ctx.createOscillator(), g = ctx.createGain();
        o.frequency.value = f; g.gain.value = 0.08;
        o.connect(g); g.connect(ctx.destination);
        o.start(ctx.currentTime + i * 0.18); o.stop(ctx.currentTime + i * 0.18 + 0.15);
      });
    } catch (e) { console.warn("audio cue unavailable", e); }
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
    S.incidents.clear();
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
        if (S.view === "wall") renderWall(null);
        return;
      }
      onIncident(d.incident, d.kind);
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

  function onIncident(inc, kind) {
    if (!inc) return;
    const old = S.incidents.get(inc.id);
    if (old && old.version > inc.version) return; // stale
    const isNew = !old && kind === "incident.created";
    S.incidents.set(inc.id, inc);
    if (S.view === "wall") renderWall(isNew ? inc.id : null);
    if (S.view === "detail" && S.detailId === inc.id) loadDetail(inc.id);
    if (isNew && OPEN_STATES.has(inc.state)) cue();
    if (Date.now() - (S.kpiAt || 0) > 10000) { S.kpiAt = Date.now(); loadKpis().catch((e) => console.warn("kpis", e)); }
  }

  // ------------------------------------------------------------------ alert wall
  async function loadKpis() {
    if (!S.user) return;
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    const k = await api("centres/" + encodeURIComponent(S.user.centre_id) + "/kpis?since=" + encodeURIComponent(since));
    const secs = (x) => x === null || x === undefined ? "—" : Math.round(x) + " s";
    $("#kpis").textContent = [t("kpi.total") + " " + k.total, t("kpi.accept_p50") + " " + secs(k.time_to_accept.p50_s),
      t("kpi.overdue") + " " + pct(k.overdue_rate), t("kpi.false_alarm") + " " + pct(k.false_alarm_rate),
      t("kpi.escalations") + " " + k.escalations].join(" · ");
  }

  async function loadWall() {
    loadKpis().catch((e) => console.warn("kpis", e));
    const page = await api("incidents?open_only=true&limit=100");
    for (const inc of page.items) {
      const old = S.incidents.get(inc.id);
      if (!old || old.version <= inc.version) S.incidents.set(inc.id, inc);
    }
    if (S.view === "wall") renderWall(null);
  }

  const SEV_RANK = { critical: 0, major: 1, serious: 2, general: 3 };
  function renderWall(freshId) {
    const wall = $("#wall");
    const open = [...S.incidents.values()].filter((i) => OPEN_STATES.has(i.state))
      .sort((a, b) => (SEV_RANK[a.severity] - SEV_RANK[b.severity]) || (b.reported_at < a.reported_at ? -1 : 1));
    $("#wall-count").textContent = "(" + open.length + ")";
    $("#wall-empty").hidden = open.length > 0;
    wall.replaceChildren(...open.map((inc) => card(inc, inc.id === freshId)));
  }

  function card(inc, fresh) {
    const img = h("img", { class: "thumb", alt: inc.id });
    setImg(img, inc);
    const canAccept = inc.permitted_actions.includes("accept");
    const resolvable = inc.permitted_actions.filter((a) => a !== "accept");
    return h("article", { class: "incident sev-" + inc.severity + (fresh ? " fresh" : ""), "data-id": inc.id, "data-state": inc.state },
      h("a", { href: "#/incident/" + encodeURIComponent(inc.id) }, img),
      h("div", { class: "body" },
        h("div", { class: "title", title: inc.camera_id }, tr("rt", inc.rule_type), " · ", camname(inc.camera_id)),
        h("div", {},
          h("span", { class: "badge sev-" + inc.severity }, tr("sev", inc.severity)),
          h("span", { class: "badge state", "data-state": inc.state }, tr("st", inc.state)),
          inc.sla_flag !== "none" ? h("span", { class: "badge sla-" + inc.sla_flag }, tr("sla", inc.sla_flag)) : null),
        h("div", { class: "meta" }, fmtTime(inc.reported_at), " · ", cname(inc.owner_centre_id), inc.zone ? " · " + inc.zone : ""),
        h("div", { class: "actions" },
          canAccept ? h("button", { class: "primary accept", type: "button", onclick: () => act(inc, "accept", {}) }, t("btn.accept")) : null,
          resolvable.length ? h("button", { class: "resolve", type: "button", onclick: () => openDialog(inc) }, t("btn.resolve")) : null,
          h("a", { href: "#/incident/" + encodeURIComponent(inc.id), class: "detail-link" }, t("btn.detail")))));
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

  function openDialog(inc) {
    S.dialogFor = inc;
    const sel = $("#action-select");
    sel.replaceChildren(...inc.permitted_actions.filter((a) => a !== "accept" || inc.permitted_actions.length === 1)
      .map((a) => h("option", { value: a }, tr("act", a))));
    $("#action-title").textContent = tr("rt", inc.rule_type) + " · " + camname(inc.camera_id);
    $("#note-input").value = ""; $("#target-input").value = ""; $("#action-error").hidden = true;
    syncDialog();
    $("#action-dialog").showModal();
  }
  function syncDialog() {
    const a = $("#action-select").value;
    $("#reason-row").hidden = a !== "reject";
    $("#target-row").hidden = a !== "dispatch";
  }
  async function submitDialog(ev) {
    ev.preventDefault();
    const inc = S.dialogFor; const a = $("#action-select").value;
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
    const img = h("img", { id: "detail-snapshot", alt: inc.id });
    setImg(img, inc);
    const kv = (pairs) => h("dl", { class: "kv" }, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== "")
      .map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]));
    const details = Object.entries(inc.details || {}).map(([k, v]) => k + "=" + v).join(", ");
    const actions = inc.permitted_actions.map((a) => h("button", {
      type: "button", class: a === "accept" ? "primary" : "", "data-action": a,
      onclick: () => a === "accept" ? act(inc, "accept", {}).then(() => loadDetail(id)) : openDialog(inc),
    }, tr("act", a)));
    const timeline = h("ol", { class: "timeline" },
      h("li", {}, fmtTime(inc.started_at), " — ", t("f.started")),
      inc.audit.map((a) => h("li", {}, fmtTime(a.at), " — ", tr("st", a.to_state), " (", a.actor, a.centre_id ? " @ " + cname(a.centre_id) : "", ")", a.note ? ": " + a.note : "")));
    const audit = h("table", { class: "grid-table", id: "audit" },
      h("thead", {}, h("tr", {}, ["audit.at", "audit.actor", "audit.centre", "audit.action", "audit.from", "audit.to", "audit.note"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, inc.audit.map((a) => h("tr", {}, h("td", {}, fmtTime(a.at)), h("td", {}, a.actor + " (" + a.role + ")"),
        h("td", {}, cname(a.centre_id)), h("td", {}, tr("act", a.action)), h("td", {}, a.from_state ? tr("st", a.from_state) : "—"),
        h("td", {}, tr("st", a.to_state)), h("td", {}, a.note)))));
    $("#detail").replaceChildren(h("div", { class: "detail" },
      h("div", {}, h("h3", {}, t("detail.snapshot")), img),
      h("div", {},
        h("h2", {}, tr("rt", inc.rule_type), " · ", inc.rule),
        h("div", { class: "actions" }, actions),
        kv([["f.severity", h("span", { class: "badge sev-" + inc.severity }, tr("sev", inc.severity))],
          ["f.state", h("span", { class: "badge", id: "detail-state", "data-state": inc.state }, tr("st", inc.state))],
          ["f.sla", tr("sla", inc.sla_flag)], ["f.camera", camname(inc.camera_id) + (S.cameras.has(inc.camera_id) ? " (" + inc.camera_id + ")" : "")], ["f.zone", inc.zone],
          ["f.owner", cname(inc.owner_centre_id)], ["f.grid", cname(inc.grid_centre_id)], ["f.started", fmtTime(inc.started_at)],
          ["f.reported", fmtTime(inc.reported_at)], ["f.accept_due", fmtTime(inc.accept_due_at)],
          ["f.close_due", fmtTime(inc.close_due_at)], ["f.escalation", String(inc.escalation_level)],
          ["f.target", inc.dispatch_target], ["f.reject_reason", inc.reject_reason ? tr("reason", inc.reject_reason) : null],
          ["f.classes", (inc.class_names || []).join(", ")], ["f.details", details]]),
        h("h3", {}, t("detail.timeline")), timeline)),
      h("h3", {}, t("detail.audit")), audit);
  }

  // ------------------------------------------------------------------ cameras
  async function loadCameras() {
    const [cams, rate] = await Promise.all([api("cameras?limit=500"), api("cameras/online-rate?window_s=86400")]);
    const byId = new Map(rate.cameras.map((c) => [c.camera_id, c]));
    $("#cam-summary").textContent = t("cam.summary") + ": " + t("cam.online_rate") + " " + pct(rate.online_rate)
      + " · " + t("cam.intact_rate") + " " + pct(rate.intact_rate) + " · " + t("cam.window") + " 24h";
    $("#cam-table thead").replaceChildren(h("tr", {}, ["cam.id", "cam.name", "cam.village", "cam.status", "cam.faults",
      "cam.scores", "cam.fps", "cam.online_rate", "cam.intact_rate"].map((k) => h("th", {}, t(k)))));
    $("#cam-table tbody").replaceChildren(...cams.map((c) => {
      const r = byId.get(c.id) || {};
      const scores = Object.entries(c.quality_scores || {}).map(([k, v]) => tr("fault", k) + " " + Number(v).toFixed(2)).join(", ");
      return h("tr", { "data-camera": c.id },
        h("td", {}, c.id), h("td", {}, c.name), h("td", {}, cname(c.village_id)),
        h("td", {}, h("span", { class: "badge cs-" + (c.status || "unknown") }, c.status ? tr("cs", c.status) : t("cam.unknown"))),
        h("td", {}, c.faults.length ? c.faults.map((f) => tr("fault", f)).join(", ") : t("cam.none")),
        h("td", { class: "muted" }, scores || "—"), h("td", {}, c.fps !== null ? Number(c.fps).toFixed(1) : "—"),
        h("td", {}, pct(r.online_rate)), h("td", {}, pct(r.intact_rate)));
    }));
  }

  // ------------------------------------------------------------------ map
  async function loadMap() {
    const fc = await api("map");
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
    const style = { coverage: ["rgba(76,175,80,0.30)", "#4caf50"], blind: ["rgba(229,57,53,0.40)", "#e53935"],
      sector: ["rgba(58,160,255,0.28)", "#3aa0ff"], candidate_view: ["rgba(245,197,24,0.15)", "#f5c518"] };
    for (const f of fc.features) {
      const kind = f.properties.kind;
      if (f.geometry.type === "Point") {
        const [x, y] = P(f.geometry.coordinates);
        const colour = kind === "candidate" ? "#f5c518" : ({ online: "#4caf50", degraded: "#f5c518", offline: "#e53935" }[f.properties.status] || "#ffffff");
        const g = s("g", { class: "map-" + kind, "data-id": f.properties.id || "" });
        g.append(s("circle", { cx: x, cy: y, r: 6, fill: colour, stroke: "#000", "stroke-width": 1.5 }));
        const label = s("text", { x: Number(x) + 9, y: Number(y) - 8, fill: "#e6edf3", "font-size": 13 });
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
    svg.append(layers.coverage, layers.blind, layers.candidate_view, layers.sector, layers.camera, layers.candidate);
    // scale bar: 50 m
    const m50 = 50 / 111320 * kx * scale;
    const bar = s("g", {});
    bar.append(s("line", { x1: 30, y1: 680, x2: 30 + m50, y2: 680, stroke: "#e6edf3", "stroke-width": 3 }));
    const bt = s("text", { x: 36 + m50, y: 684, fill: "#8b9bb0", "font-size": 12 }); bt.textContent = "50 m";
    bar.append(bt); svg.append(bar);
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
    $("#banner").hidden = true;
    if (!S.token) { show("login"); return; }
    if (hash.startsWith("#/incident/")) { show("detail"); loadDetail(decodeURIComponent(hash.slice(11))); }
    else if (hash === "#/cameras") { show("cameras"); loadCameras().catch((e) => console.error(e)); }
    else if (hash === "#/map") { show("map"); loadMap().catch((e) => console.error(e)); }
    else { show("wall"); renderWall(null); }
  }
  async function start() {
    await loadCentres();
    $("#whoami").textContent = S.user ? S.user.username + " · " + S.user.role + " @ " + cname(S.user.centre_id) : "";
    if (!location.hash || location.hash === "#/login") location.hash = "#/wall";
    route();
    connectFeed();
  }

  document.addEventListener("DOMContentLoaded", () => {
    applyI18n();
    $("#login-form").addEventListener("submit", login);
    $("#logout").addEventListener("click", logout);
    const toggle = () => { S.lang = S.lang === "zh" ? "en" : "zh"; localStorage.setItem("xl.lang", S.lang); applyI18n(); if (S.token) route(); };
    $("#lang").addEventListener("click", toggle); $("#lang-login").addEventListener("click", toggle);
    $("#action-select").addEventListener("change", syncDialog);
    $("#action-form").addEventListener("submit", submitDialog);
    $("#action-cancel").addEventListener("click", () => $("#action-dialog").close());
    window.addEventListener("hashchange", route);
    if (S.token) start(); else show("login");
  });
})();
