// The operator dashboard: a snapshot of the live picture, kept current by the SSE stream.
//
// Plain DOM, no libraries and no build step: the page must work on an offline deployment,
// and every string on it comes from 911 data, so text only ever enters the page through
// textContent / createTextNode and attributes through setAttribute (never innerHTML).
"use strict";

(() => {
  const KEY_STORE = "rtcc.dashboard.key";
  const SVG_NS = "http://www.w3.org/2000/svg";
  // Kept in line with streams/serving/layout.py: after these a subject is off the picture.
  // "merged" is not among them: it is published on the *primary* when a duplicate call
  // folds into it (the primary says "2 calls" and stays); the duplicate itself ends
  // through state.merged_into.
  const ENDING_KINDS = new Set(["closed", "withdrawn", "hotspot_closed", "cluster_closed"]);
  const ENDING_STATUSES = new Set(["closed", "cancelled", "cleared"]);
  const COLOURS = {
    violent: "#e53935", property: "#fb8c00", disorder: "#ab47bc", traffic: "#fdd835",
    medical: "#26c6da", fire: "#ff7043", mental_health: "#ec407a", welfare: "#f48fb1",
    hazard: "#8d6e63", proactive: "#78909c", other: "#b0bec5",
  };
  const FALLBACK_COLOUR = "#cfd8dc";
  const KIND_ORDER = { hotspot: 0, cluster: 1, incident: 2 };
  const FRESH_MS = 4000; // how long a row that just changed stays highlighted

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), counter: $("counter"), totals: $("totals"), last: $("last-update"),
    area: $("area"), fit: $("fit"), map: $("map"), legend: $("legend"), list: $("list"),
    shown: $("shown"), detail: $("detail"), kind: $("f-kind"), category: $("f-category"),
    statusFilter: $("f-status"), district: $("f-district"), text: $("f-text"),
    dialog: $("key-dialog"), keyForm: $("key-form"), keyInput: $("key-input"), keyWhy: $("key-why"),
  };

  const state = {
    key: null,
    areas: [], // [{id, name, geometry, bbox: [minLon, minLat, maxLon, maxLat]}]
    subjects: new Map(), // subject_id -> latest payload, live subjects only
    fresh: new Map(), // subject_id -> when it last changed (ms)
    updates: 0, // SSE updates received since the page was opened
    lastId: "0-0", // the snapshot's stream position, where its stream starts
    source: null,
    generation: 0, // bumped on every (re)load: callbacks of an older connection are ignored
    retryMs: 2000,
    selected: null, // subject id shown in the detail pane
    ended: null, // last payload of the selected subject after it left the picture
    view: null, // map view: {cx, cy, k, cos}: projected centre, px per unit, cos(lat)
  };

  // --- small DOM helpers: the only way anything enters the page -------------------------

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const kid of kids.flat(Infinity)) {
      if (kid !== null && kid !== undefined && kid !== false) {
        node.append(kid instanceof Node ? kid : String(kid)); // strings become text nodes
      }
    }
    return node;
  }

  function svg(tag, attrs, ...kids) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (const kid of kids) if (kid) node.append(kid);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, String(value));
    }
  }

  function tooltip(text) {
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = text;
    return title;
  }

  // --- the key: from the URL fragment (never sent to the server) into this tab's storage --

  function takeKey() {
    const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
      // Drop it from the address bar, history and any screenshot of the page.
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(KEY_STORE);
  }

  function askKey(why) {
    closeStream();
    setStatus("key", "API key needed");
    ui.keyWhy.textContent = why;
    ui.keyInput.value = "";
    if (!ui.dialog.open) ui.dialog.showModal();
  }

  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.keyInput.value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    state.key = key;
    ui.dialog.close();
    load();
  });

  // --- snapshot, then the stream from the snapshot's position -----------------------------

  class AuthError extends Error {}

  async function api(path) {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${state.key}` }, cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) {
      throw new AuthError(`the gateway refused this key (HTTP ${response.status})`);
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  async function load() {
    const generation = ++state.generation;
    closeStream();
    setStatus("loading", "loading snapshot");
    try {
      if (!state.areas.length) setAreas(await api("/v1/areas"));
      const snapshot = await api("/v1/snapshot");
      if (generation !== state.generation) return;
      state.subjects = new Map();
      for (const feature of snapshot.features || []) apply(feature.properties, false);
      // The snapshot and its stream position come from one Redis transaction: resuming
      // right after it neither misses nor repeats an update.
      state.lastId = snapshot.stream_id || "0-0";
      if (!state.view) fitArea(busiestArea(), true);
      render();
      openStream(generation);
    } catch (error) {
      if (generation !== state.generation) return;
      if (error instanceof AuthError) {
        sessionStorage.removeItem(KEY_STORE);
        askKey(error.message);
      } else {
        setStatus("offline", "offline, retrying");
        retryLater();
      }
    }
  }

  function openStream(generation) {
    const query = new URLSearchParams({ access_token: state.key, last_event_id: state.lastId });
    // EventSource cannot send headers, hence the key in the query. On a dropped connection
    // the browser reconnects by itself and sends Last-Event-ID, which the gateway prefers
    // to the query's last_event_id.
    const source = new EventSource(`/v1/stream?${query}`);
    state.source = source;
    source.onopen = () => {
      if (generation !== state.generation) return;
      state.retryMs = 2000;
      setStatus("live", "live");
    };
    source.addEventListener("update", (event) => {
      if (generation !== state.generation) return;
      let payload;
      try {
        payload = JSON.parse(event.data);
      } catch {
        return; // not ours to render; the next update carries the full state anyway
      }
      state.updates += 1;
      ui.last.textContent = `last update ${new Date().toLocaleTimeString()}`;
      apply(payload, true);
      scheduleRender();
    });
    // The resume point was trimmed from the stream: only a fresh snapshot is complete.
    source.addEventListener("reset", () => {
      if (generation === state.generation) load();
    });
    source.onerror = () => {
      if (generation !== state.generation) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused outright (key revoked, gateway error): the browser gives up, so do we,
        // and start again from a snapshot (which also tells a bad key from an outage).
        setStatus("offline", "disconnected, retrying");
        retryLater();
      } else {
        setStatus("reconnecting", "reconnecting");
      }
    };
  }

  function closeStream() {
    if (state.source) state.source.close();
    state.source = null;
  }

  function retryLater() {
    closeStream();
    const generation = state.generation;
    setTimeout(() => { if (generation === state.generation) load(); }, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 30000);
  }

  function setStatus(name, text) {
    ui.status.dataset.state = name;
    ui.status.textContent = text;
  }

  // --- the live picture ---------------------------------------------------------------------

  function isEnding(payload) {
    const s = payload.state;
    if (!s) return true; // withdrawn: nothing left to show
    return ENDING_KINDS.has(payload.kind) || ENDING_STATUSES.has(s.status)
      || Boolean(s.merged_into) || s.open === false;
  }

  function apply(payload, live) {
    if (!payload || !payload.subject_id) return;
    const id = payload.subject_id;
    const known = state.subjects.get(id);
    if (known && Number(payload.version) < Number(known.version)) return; // a stale copy
    if (isEnding(payload)) {
      state.subjects.delete(id);
      state.fresh.delete(id);
      if (id === state.selected) {
        state.ended = { ...payload, state: payload.state || (known && known.state) || {} };
      }
      return;
    }
    state.subjects.set(id, payload);
    if (id === state.selected) state.ended = null;
    if (live) state.fresh.set(id, Date.now());
  }

  // Updates can arrive by the hundred: draw at most every 80 ms. A timer rather than
  // requestAnimationFrame, so that a background tab still keeps its picture current.
  let renderTimer = null, renderDue = Infinity;
  function scheduleRender(delay = 80) {
    const due = Date.now() + delay;
    if (renderTimer !== null && renderDue <= due) return; // an earlier render is booked
    clearTimeout(renderTimer);
    renderDue = due;
    renderTimer = setTimeout(() => { renderTimer = null; renderDue = Infinity; render(); }, delay);
  }

  function render() {
    const all = [...state.subjects.values()];
    refreshFilterOptions(all);
    const shown = all.filter(matchesFilters).sort(byImportance);
    ui.counter.textContent = String(state.updates);
    const n = (kind) => {
      const count = all.filter((p) => p.subject_kind === kind).length;
      return `${count} ${kind}${count === 1 ? "" : "s"}`;
    };
    ui.totals.textContent = `${n("incident")} · ${n("hotspot")} · ${n("cluster")}`;
    ui.shown.textContent = `showing ${shown.length} of ${all.length}`;
    renderList(shown);
    renderMap(shown);
    renderDetail();
    renderLegend(all);
    // Un-highlight rows once they are no longer fresh.
    const now = Date.now();
    for (const [id, when] of state.fresh) if (now - when > FRESH_MS) state.fresh.delete(id);
    if (state.fresh.size) scheduleRender(FRESH_MS);
  }

  function byImportance(a, b) {
    const kinds = KIND_ORDER[a.subject_kind] - KIND_ORDER[b.subject_kind];
    if (kinds) return kinds;
    const pa = a.state.priority || 9, pb = b.state.priority || 9;
    if (pa !== pb) return pa - pb;
    return String(receivedOf(b)).localeCompare(String(receivedOf(a))); // newest first
  }

  const receivedOf = (p) => (p.state.times && p.state.times.received) || p.event_time || "";
  const statusOf = (p) => p.state.status || (p.state.open ? "open" : "");
  const colourOf = (p) => COLOURS[p.state.category] || FALLBACK_COLOUR;
  const titleOf = (p) => {
    const s = p.state;
    if (p.subject_kind === "hotspot") return `Hotspot: ${s.category || "?"} (level ${s.level || 1})`;
    if (p.subject_kind === "cluster") return `Community cluster: ${s.category || "?"}`;
    return s.type_text || s.type_code || s.category || "incident";
  };

  // --- filters ------------------------------------------------------------------------------

  function matchesFilters(p) {
    const s = p.state;
    if (ui.kind.value && p.subject_kind !== ui.kind.value) return false;
    if (ui.category.value && s.category !== ui.category.value) return false;
    if (ui.statusFilter.value && statusOf(p) !== ui.statusFilter.value) return false;
    if (ui.district.value && String(s.district ?? "") !== ui.district.value) return false;
    const words = ui.text.value.trim().toLowerCase();
    if (!words) return true;
    const haystack = [p.subject_id, s.type_text, s.type_code, s.address_text, s.category,
      s.district, s.incident_number, statusOf(p), ...(s.units || [])].join(" ").toLowerCase();
    return words.split(/\s+/).every((word) => haystack.includes(word));
  }

  const optionSets = new Map(); // select -> the values it lists now
  function refreshFilterOptions(all) {
    fillOptions(ui.category, all.map((p) => p.state.category));
    fillOptions(ui.statusFilter, all.map(statusOf));
    fillOptions(ui.district, all.map((p) => p.state.district));
  }

  function fillOptions(select, values) {
    // The chosen value stays listed even when nothing matches it any more.
    const wanted = new Set(values.filter((v) => v !== null && v !== undefined && v !== "").map(String));
    if (select.value) wanted.add(select.value);
    const sorted = [...wanted].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const signature = sorted.join("\u0000");
    if (optionSets.get(select) === signature) return; // leave an open dropdown alone
    optionSets.set(select, signature);
    const chosen = select.value;
    const first = select.options[0];
    select.replaceChildren(first, ...sorted.map((v) => el("option", { value: v }, v)));
    select.value = chosen;
  }

  for (const control of [ui.kind, ui.category, ui.statusFilter, ui.district]) {
    control.addEventListener("change", () => render());
  }
  ui.text.addEventListener("input", () => scheduleRender(50));
  $("filters").addEventListener("submit", (event) => event.preventDefault());

  // --- the list -----------------------------------------------------------------------------

  function renderList(shown) {
    const now = Date.now();
    const rows = shown.map((p) => {
      const s = p.state;
      const classes = ["row", p.subject_kind];
      if (p.subject_id === state.selected) classes.push("selected");
      if (now - (state.fresh.get(p.subject_id) || 0) < FRESH_MS) classes.push("fresh");
      const badges = [];
      if (s.mental_health) badges.push(el("span", { class: "badge mh", title: "mental health" }, "MH"));
      if (s.calls > 1) badges.push(el("span", { class: "badge" }, `${s.calls} calls`));
      if (s.crisis && Object.keys(s.crisis).length) badges.push(el("span", { class: "badge crisis" }, "crisis team"));
      if (s.linked_reports) badges.push(el("span", { class: "badge" }, `${s.linked_reports} reports`));
      if (p.subject_kind === "cluster") badges.push(el("span", { class: "badge" }, `${s.reports || 0} reports`));
      if (p.subject_kind === "hotspot") badges.push(el("span", { class: "badge" }, `${s.count ?? "?"} vs ${fmtNumber(s.baseline)}`));
      const where = [s.address_text, s.district ? `D${s.district}` : null, fmtTime(receivedOf(p))]
        .filter(Boolean).join(" · ");
      const chip = el("span", { class: "chip", title: s.category || "" });
      chip.style.background = colourOf(p); // CSSOM: allowed by the page's style policy
      return el("li", {
        class: classes.join(" "), "data-id": p.subject_id, "data-kind": p.subject_kind,
        tabindex: 0, onclick: () => select(p.subject_id, true),
        onkeydown: (event) => { if (event.key === "Enter") select(p.subject_id, true); },
      },
      chip,
      el("div", { class: "main" },
        el("div", { class: "line1" },
          s.priority ? el("span", { class: `prio p${s.priority}` }, `P${s.priority}`) : null,
          el("span", { class: "title" }, titleOf(p)),
          el("span", { class: "state" }, statusOf(p))),
        el("div", { class: "line2" }, el("span", { class: "where" }, where), ...badges)));
    });
    ui.list.replaceChildren(...rows);
  }

  // --- the detail pane ----------------------------------------------------------------------

  function select(id, fromList) {
    state.selected = id;
    state.ended = null;
    const p = state.subjects.get(id);
    if (p && fromList) ensureVisible(p);
    render();
  }

  function renderDetail() {
    const p = state.subjects.get(state.selected) || state.ended;
    if (!state.selected || !p) {
      ui.detail.hidden = true;
      ui.detail.replaceChildren();
      return;
    }
    const s = p.state || {};
    const parts = [
      el("header", {},
        el("h2", {}, titleOf(p)),
        el("button", { type: "button", class: "close", title: "close", onclick: () => { state.selected = null; render(); } }, "×")),
    ];
    if (state.ended && !state.subjects.has(state.selected)) {
      parts.push(el("p", { class: "ended" }, `No longer on the picture (${p.kind}${s.merged_into ? `, merged into ${s.merged_into}` : ""}).`));
    }
    if (p.subject_kind === "incident") parts.push(...incidentDetail(p, s));
    else if (p.subject_kind === "hotspot") parts.push(...hotspotDetail(s));
    else parts.push(...clusterDetail(s));
    parts.push(el("p", { class: "muted small" },
      `${p.subject_id} · v${p.version} ${p.kind} at ${fmtTime(p.event_time, true)}`,
      p.reason ? el("br") : null, p.reason ? `why: ${p.reason}` : null));
    ui.detail.replaceChildren(...parts);
    ui.detail.hidden = false;
  }

  function fields(pairs) {
    return el("dl", {}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  function incidentDetail(p, s) {
    const out = [fields([
      ["status", [s.status, s.status_text && s.status_text !== s.status ? `(${s.status_text})` : ""].join(" ").trim()],
      ["priority", s.priority], ["category", s.category],
      ["mental health", s.mental_health ? "yes" : null],
      ["call type", [s.type_code, s.type_text].filter((v, i, a) => v && a.indexOf(v) === i).join(" · ")],
      ["address", s.address_text], ["district", [s.district, s.beat].filter(Boolean).join(" / beat ")],
      ["incident", [s.agency_id, s.incident_number].filter(Boolean).join(" ")],
      ["units", (s.units || []).join(", ")], ["disposition", s.disposition],
      ...Object.entries(s.times || {}).map(([step, when]) => [step.replace(/_/g, " "), fmtTime(when, true)]),
    ])];
    // A merged incident: its own calls, and the link back if it was itself merged.
    const merged = s.calls_merged || [];
    out.push(section(`Calls (${s.calls || 1})`, [
      el("li", {}, `${p.subject_id} (first call)`),
      ...merged.map((id) => el("li", {}, `${id} (merged duplicate)`)),
    ]));
    if (s.merged_into) {
      out.push(el("p", {}, "Merged into ", linkTo(s.merged_into)));
    }
    const reports = s.linked_report_ids || [];
    if (reports.length || s.linked_reports) {
      const clusterOf = reportClusters();
      out.push(section(`Linked community reports (${s.linked_reports ?? reports.length})`,
        reports.map((id) => el("li", {}, id, clusterOf.has(id) ? [" in ", linkTo(clusterOf.get(id))] : null))));
    }
    const crisis = Object.entries(s.crisis || {});
    if (crisis.length) {
      const head = el("tr", {}, ["crisis call", "status", "team", "outcome", "time"].map((h) => el("th", {}, h)));
      const rows = crisis.map(([id, c]) => {
        const activity = typeof c === "object" && c ? c : { status: c }; // a bare status too
        return el("tr", { class: "crisis-row" }, el("td", {}, id),
          el("td", {}, String(activity.status ?? "—").replace(/_/g, " ")),
          el("td", {}, activity.team ?? "—"), el("td", {}, activity.outcome ?? "—"),
          el("td", {}, fmtTime(activity.time, true)));
      });
      out.push(el("section", { class: "crisis" }, el("h3", {}, "Crisis team activity"),
        el("table", {}, el("thead", {}, head), el("tbody", {}, rows))));
    }
    return out;
  }

  function hotspotDetail(s) {
    return [fields([
      ["status", s.status], ["level", s.level === 2 ? "2 (escalated)" : s.level],
      ["category", s.category], ["calls in window", s.count], ["usual", fmtNumber(s.baseline)],
      ["p-value", s.p_value !== undefined ? Number(s.p_value).toExponential(1) : null],
      ["peak", s.peak_count],
      ["window", s.window_start ? `${fmtTime(s.window_start, true)} – ${fmtTime(s.window_end)}` : null],
      ["opened", fmtTime(s.opened_time, true)], ["H3 cell", s.cell],
    ])];
  }

  function clusterDetail(s) {
    return [fields([
      ["category", s.category], ["reports", s.reports], ["open", s.open ? "yes" : "no"],
      ["first report", fmtTime(s.first_report, true)], ["last report", fmtTime(s.last_report, true)],
      ["H3 area", s.area || s.cell],
    ]), section("Reports", (s.report_ids || []).map((id) => el("li", {}, id)))];
  }

  function section(title, items) {
    return el("section", {}, el("h3", {}, title), el("ul", {}, items));
  }

  function linkTo(id) {
    if (!state.subjects.has(id)) return el("span", { class: "ref" }, id);
    return el("button", { type: "button", class: "link", onclick: () => select(id, true) }, id);
  }

  function reportClusters() {
    const out = new Map();
    for (const p of state.subjects.values()) {
      if (p.subject_kind === "cluster") for (const r of p.state.report_ids || []) out.set(r, p.subject_id);
    }
    return out;
  }

  // --- the map: the service areas' own geometry, projected by hand -------------------------

  function setAreas(collection) {
    state.areas = (collection.features || []).map((f) => ({
      id: f.id, name: (f.properties && f.properties.name) || f.id, geometry: f.geometry,
      bbox: bboxOf(rings(f.geometry).flat()),
    }));
    const all = bboxOf(state.areas.flatMap((a) => [[a.bbox[0], a.bbox[1]], [a.bbox[2], a.bbox[3]]]));
    ui.area.replaceChildren(
      ...state.areas.map((a, i) => el("option", { value: String(i) }, a.name)),
      el("option", { value: "all" }, "all areas"));
    state.allBbox = all;
  }

  function rings(geometry) {
    if (!geometry) return [];
    if (geometry.type === "Polygon") return geometry.coordinates;
    if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
    return [];
  }

  function bboxOf(points) {
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [lon, lat] of points) {
      b[0] = Math.min(b[0], lon); b[1] = Math.min(b[1], lat);
      b[2] = Math.max(b[2], lon); b[3] = Math.max(b[3], lat);
    }
    return b;
  }

  const inBbox = (b, lon, lat) => lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3];
  const pointOf = (p) => (Number.isFinite(p.state.longitude) && Number.isFinite(p.state.latitude)
    ? [p.state.longitude, p.state.latitude] : null);

  function busiestArea() {
    let best = 0, most = -1;
    state.areas.forEach((area, i) => {
      let n = 0;
      for (const p of state.subjects.values()) {
        const pt = pointOf(p);
        if (pt && inBbox(area.bbox, pt[0], pt[1])) n += 1;
      }
      if (n > most) { best = i; most = n; }
    });
    return best;
  }

  function size() {
    const box = ui.map.getBoundingClientRect();
    return [box.width || 800, box.height || 600];
  }

  // Equirectangular with the area's cos(latitude): at city scale it is as good as
  // Web Mercator, and needs neither tiles nor a projection library.
  // Fit the map to an area (an index into state.areas, or "all"); with `toData`, to the part
  // of it that holds live subjects, which is what an operator opens the page to see.
  function fitArea(which, toData = false) {
    const area = state.areas[which];
    let bbox = area ? area.bbox : state.allBbox;
    ui.area.value = area ? String(which) : "all";
    if (toData && area) {
      const points = [...state.subjects.values()].map(pointOf)
        .filter((pt) => pt && inBbox(area.bbox, pt[0], pt[1]));
      if (points.length >= 2) {
        const [x0, y0, x1, y1] = bboxOf(points);
        const mx = Math.max((x1 - x0) * 0.05, 0.005), my = Math.max((y1 - y0) * 0.05, 0.005);
        bbox = [x0 - mx, y0 - my, x1 + mx, y1 + my];
      }
    }
    if (!bbox || !Number.isFinite(bbox[0])) {
      state.view = { cx: 0, cy: 0, k: 1, cos: 1 };
      return;
    }
    const cos = Math.cos(((bbox[1] + bbox[3]) / 2) * Math.PI / 180);
    const [w, h] = size();
    const k = 0.94 * Math.min(w / ((bbox[2] - bbox[0]) * cos || 1e-6), h / ((bbox[3] - bbox[1]) || 1e-6));
    state.view = { cx: ((bbox[0] + bbox[2]) / 2) * cos, cy: -(bbox[1] + bbox[3]) / 2, k, cos };
  }

  function project(lon, lat) {
    const v = state.view, [w, h] = size();
    return [(lon * v.cos - v.cx) * v.k + w / 2, (-lat - v.cy) * v.k + h / 2];
  }

  function unproject(x, y) {
    const v = state.view, [w, h] = size();
    return [((x - w / 2) / v.k + v.cx) / v.cos, -((y - h / 2) / v.k + v.cy)];
  }

  function ensureVisible(p) {
    const pt = pointOf(p);
    if (!pt || !state.view) return;
    const [x, y] = project(pt[0], pt[1]), [w, h] = size();
    if (x >= 0 && x <= w && y >= 0 && y <= h) return;
    const area = state.areas.findIndex((a) => inBbox(a.bbox, pt[0], pt[1]));
    if (area >= 0) fitArea(area);
    else {
      state.view.cx = pt[0] * state.view.cos;
      state.view.cy = -pt[1];
    }
  }

  const pathOf = (ring) => ring.map(([lon, lat], i) => {
    const [x, y] = project(lon, lat);
    return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
  }).join("") + "Z";

  function renderMap(shown) {
    if (!state.view) return;
    const [w, h] = size();
    ui.map.setAttribute("viewBox", `0 0 ${w} ${h}`);
    const areas = svg("g", { class: "areas" });
    for (const area of state.areas) {
      areas.append(svg("path", { d: rings(area.geometry).map(pathOf).join(""), class: "area" }, tooltip(area.name)));
      const [x, y] = project(area.bbox[0], area.bbox[3]);
      const label = svg("text", { x: x + 6, y: y + 16, class: "area-label" });
      label.textContent = area.name;
      areas.append(label);
    }
    const hotspots = svg("g", { class: "hotspots" });
    const outlines = svg("g", { class: "hotspot-outlines" });
    const clusters = svg("g", { class: "clusters" });
    const incidents = svg("g", { class: "incidents" });
    let picked = null;
    for (const p of shown) {
      const s = p.state, selected = p.subject_id === state.selected;
      const common = { "data-id": p.subject_id, onclick: () => select(p.subject_id, false) };
      if (p.subject_kind === "hotspot") {
        // Its H3 cell's outline when published, else a disc around its centre.
        const centre = pointOf(p) && project(...pointOf(p));
        const shape = s.boundary && s.boundary.type === "Polygon"
          ? svg("path", { d: s.boundary.coordinates.map(pathOf).join("") })
          : centre && svg("circle", { cx: centre[0], cy: centre[1], r: 14 });
        if (!shape) continue;
        setAttrs(shape, { ...common, class: `hotspot level-${s.level || 1}${selected ? " selected" : ""}`, fill: colourOf(p) });
        shape.append(tooltip(`${titleOf(p)}: ${s.count ?? "?"} calls, usually ${fmtNumber(s.baseline)}`));
        hotspots.append(shape);
        for (const cls of ["hotspot-halo", `hotspot-outline level-${s.level || 1}`]) {
          const outline = shape.cloneNode(false); // attributes only: no title, no listener
          outline.removeAttribute("data-id");
          setAttrs(outline, { class: cls });
          outlines.append(outline);
        }
        continue;
      }
      const pt = pointOf(p);
      if (!pt) continue; // no location (e.g. a crisis call known only by district): list only
      const [x, y] = project(pt[0], pt[1]);
      if (p.subject_kind === "cluster") {
        const r = 6 + Math.min(8, s.reports || 0);
        clusters.append(svg("path", {
          ...common, d: `M${x},${y - r}L${x + r},${y}L${x},${y + r}L${x - r},${y}Z`,
          class: `cluster${selected ? " selected" : ""}`, fill: colourOf(p),
        }, tooltip(`${titleOf(p)}: ${s.reports || 0} reports`)));
        continue;
      }
      const r = 3 + (6 - Math.min(5, Math.max(1, s.priority || 5)));
      const g = svg("g", { ...common, class: `incident${s.mental_health ? " mh" : ""}${selected ? " selected" : ""}` },
        tooltip(`${titleOf(p)} · P${s.priority ?? "?"} · ${s.address_text || ""}`));
      if (selected) g.append(svg("circle", { cx: x, cy: y, r: r + 8, class: "pick-ring" }));
      if (s.mental_health) g.append(svg("circle", { cx: x, cy: y, r: r + 3.5, class: "mh-ring" }));
      g.append(svg("circle", { cx: x, cy: y, r, fill: colourOf(p), class: "dot" }));
      incidents.append(g);
      if (selected) picked = g;
    }
    if (picked) incidents.append(picked); // the selected incident on top of its neighbours
    ui.map.replaceChildren(areas, graticule(w, h), hotspots, clusters, incidents, outlines);
  }

  // Lines of latitude and longitude every "round" step, so that distances can be judged
  // without a base map.
  function graticule(w, h) {
    const [lon0, lat1] = unproject(0, 0), [lon1, lat0] = unproject(w, h);
    const span = Math.max(lon1 - lon0, 1e-9);
    const step = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20].find((s) => span / s <= 10) || 45;
    const g = svg("g", { class: "grid" });
    let d = "";
    for (let lon = Math.ceil(lon0 / step) * step; lon <= lon1; lon += step) {
      const [x] = project(lon, 0);
      d += `M${x.toFixed(1)},0V${h}`;
      const label = svg("text", { x: x + 3, y: 12, class: "grid-label" });
      label.textContent = `${lon.toFixed(3)}°`;
      g.append(label);
    }
    for (let lat = Math.ceil(lat0 / step) * step; lat <= lat1; lat += step) {
      const [, y] = project(0, lat);
      d += `M0,${y.toFixed(1)}H${w}`;
      const label = svg("text", { x: 4, y: y - 3, class: "grid-label" });
      label.textContent = `${lat.toFixed(3)}°`;
      g.append(label);
    }
    g.prepend(svg("path", { d, class: "grid-line" }));
    return g;
  }

  function renderLegend(all) {
    const present = [...new Set(all.map((p) => p.state.category).filter(Boolean))].sort();
    const signature = present.join(",");
    if (ui.legend.dataset.signature === signature) return;
    ui.legend.dataset.signature = signature;
    const item = (colour, text, extra) => {
      const swatch = el("span", { class: `swatch ${extra || ""}` });
      if (colour) swatch.style.background = colour;
      return el("span", { class: "item" }, swatch, text);
    };
    ui.legend.replaceChildren(
      ...present.map((c) => item(COLOURS[c] || FALLBACK_COLOUR, c.replace("_", " "))),
      item(null, "mental health", "mh"), item(null, "hotspot", "hot"), item(null, "cluster", "diamond"),
      el("span", { class: "item muted" }, "size: priority"));
  }

  // Wheel to zoom about the pointer, drag to pan; a click without a drag selects.
  let drag = null, suppressClick = false;
  ui.map.addEventListener("wheel", (event) => {
    if (!state.view) return;
    event.preventDefault();
    const box = ui.map.getBoundingClientRect();
    const [lon, lat] = unproject(event.clientX - box.left, event.clientY - box.top);
    state.view.k *= Math.exp(-event.deltaY * 0.0015);
    const [x, y] = project(lon, lat);
    state.view.cx += (x - (event.clientX - box.left)) / state.view.k;
    state.view.cy += (y - (event.clientY - box.top)) / state.view.k;
    scheduleRender(16);
  }, { passive: false });
  ui.map.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, moved: false };
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag || !state.view) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    state.view.cx -= dx / state.view.k;
    state.view.cy -= dy / state.view.k;
    drag.x = event.clientX;
    drag.y = event.clientY;
    scheduleRender(16);
  });
  window.addEventListener("pointerup", () => {
    suppressClick = Boolean(drag && drag.moved); // the click that follows a drag is no pick
    drag = null;
  });
  ui.map.addEventListener("click", (event) => {
    if (suppressClick) event.stopPropagation();
    suppressClick = false;
  }, true);
  ui.area.addEventListener("change", () => { fitArea(ui.area.value === "all" ? "all" : Number(ui.area.value)); render(); });
  ui.fit.addEventListener("click", () => { fitArea(ui.area.value === "all" ? "all" : Number(ui.area.value)); render(); });
  window.addEventListener("resize", () => scheduleRender(50));

  // --- formatting ---------------------------------------------------------------------------

  // Times of day alone for today; an incident open since yesterday (or a replay) says so.
  function fmtTime(iso, withYear) {
    if (!iso) return "";
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return String(iso);
    const opts = { hour: "2-digit", minute: "2-digit" };
    if (withYear) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
    else if (when.toDateString() !== new Date().toDateString()) {
      Object.assign(opts, { month: "2-digit", day: "2-digit" });
    }
    return when.toLocaleString(undefined, opts);
  }

  function fmtNumber(value) {
    if (value === null || value === undefined || value === "") return "?";
    const n = Number(value);
    return Number.isFinite(n) ? String(Math.round(n * 10) / 10) : String(value);
  }

  // --- start ----------------------------------------------------------------------------------

  // A link with another key, opened on this page, only changes the fragment: no reload.
  window.addEventListener("hashchange", () => {
    const key = takeKey();
    if (key && key !== state.key) {
      state.key = key;
      if (ui.dialog.open) ui.dialog.close();
      load();
    }
  });

  state.key = takeKey();
  if (state.key) load();
  else askKey("Open this page as /dashboard#key=<operator API key>, or paste the key here.");
})();
