// The live map: the city's own boundaries as vector layers (no tile server needed), the cases
// as clustered markers coloured by status (red ring: overdue, yellow: warning) or as a heat
// layer, a pulse where something new happens, and a pick mode to place a case that has no
// location yet. Leaflet, markercluster and leaflet.heat are loaded as classic scripts.
import { STATUS_NAMES, api } from "./api.js";
import { el } from "./dom.js";
import { cityBounds, createCityMap, bboxOf, jurisdictions } from "./map.js";
import { debounce } from "./util.js";
import { GROUP_OF_STATUS, STATUS_GROUPS, departmentName, fromFeature, level, place } from "./command-model.js";

const DISTRICT_STYLE = { color: "#3ea6ff", weight: 1.6, opacity: 0.9, fillColor: "#0c3a7d", fillOpacity: 0.28 };
const DISTRICT_OUTSIDE = { color: "#2a5690", weight: 1, opacity: 0.6, fillColor: "#0a2350", fillOpacity: 0.15 };
const STREET_STYLE = { color: "#2f6fb8", weight: 0.8, opacity: 0.75, fill: false, dashArray: "3 3" };
const SCOPE_STYLE = { color: "#7fe7ff", weight: 2.6, opacity: 1, fill: false };
const COMMUNITY_STYLE = { color: "#3a78c2", weight: 0.8, opacity: 0.8, fill: false };
const GRID_STYLE = { color: "#2b5a93", weight: 0.6, opacity: 0.7, fill: false, dashArray: "2 3" };

const STREETS_FROM_ZOOM = 10.5;
const STREET_LABELS_FROM_ZOOM = 13;
const COMMUNITIES_FROM_ZOOM = 14;
const GRIDS_FROM_ZOOM = 16;
// GET /api/cases/map counts open cases per jurisdiction below this zoom (the server's CASE_ZOOM).
const CASES_FROM_ZOOM = 15;

// Centre of the largest outer ring (area-weighted centroid): where a district's label goes.
function labelPoint(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  let best = null, bestArea = -1;
  for (const polygon of polygons) {
    const ring = polygon[0];
    let area = 0, cx = 0, cy = 0;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [x0, y0] = ring[j], [x1, y1] = ring[i];
      const f = x0 * y1 - x1 * y0;
      area += f; cx += (x0 + x1) * f; cy += (y0 + y1) * f;
    }
    if (Math.abs(area) > bestArea && area !== 0) {
      bestArea = Math.abs(area);
      best = [cy / (3 * area), cx / (3 * area)];
    }
  }
  return best;
}

// -- markers -----------------------------------------------------------------------------------

function clusterIcon(cluster) {
  const children = cluster.getAllChildMarkers();
  const count = children.length;
  let overdue = 0, warning = 0;
  for (const m of children) {
    if (m.options.lv === "overdue") overdue++;
    else if (m.options.lv === "warning") warning++;
  }
  const size = count < 10 ? "s" : count < 100 ? "m" : "l";
  const cls = `cl cl-${size}${overdue ? " cl-overdue" : warning ? " cl-warning" : ""}`;
  const px = { s: 30, m: 38, l: 48 }[size];
  const title = `${count} 件${overdue ? `，其中超期 ${overdue} 件` : ""}${warning ? `，临期 ${warning} 件` : ""}`;
  return L.divIcon({ html: el("span", { title }, count), className: cls, iconSize: [px, px] });
}

function markerIcon(s) {
  const group = GROUP_OF_STATUS[s.status] || STATUS_GROUPS[0];
  const lv = level(s);
  const cls = `cm cm-${group.key} lv-${lv}${s.priority === "urgent" ? " cm-urgent" : ""}`;
  return L.divIcon({ className: cls, iconSize: [14, 14], html: "" });
}

function tooltipNode(s) {
  const lv = level(s);
  const dept = departmentName(s);
  return el("div", { class: "cm-tip" },
    el("div", { class: "cm-tip-head" }, el("strong", {}, (s.category || {}).name || "未分类"), " ", el("span", {}, s.number || "")),
    el("div", {}, `${STATUS_NAMES[s.status] || s.status}${lv === "overdue" ? " · 已超期" : lv === "warning" ? " · 临期" : ""}`),
    el("div", { class: "cm-tip-muted" }, [place(s), s.community].filter(Boolean).join(" · ")),
    dept ? el("div", { class: "cm-tip-muted" }, `责任部门：${dept}`) : null);
}

// -- the map and its panes -------------------------------------------------------------------

function makeLeafletMap(container, me) {
  const map = createCityMap(container, {
    me, zoomControl: false, zoomSnap: 0.25, minZoom: 7, maxZoom: 18, worldCopyJump: false, preferCanvas: false,
  });
  L.control.zoom({ position: "topright", zoomInTitle: "放大", zoomOutTitle: "缩小" }).addTo(map);
  for (const [name, z] of [["districts", 300], ["streets", 310], ["fine", 320], ["scope", 330], ["labels", 450], ["pulse", 640]]) {
    map.createPane(name).style.zIndex = z;
  }
  map.getPane("labels").style.pointerEvents = "none";
  map.getPane("pulse").style.pointerEvents = "none";
  return map;
}

// -- cases: clustered markers or a heat layer --------------------------------------------------

function createCaseLayer(map, container) {
  const markers = new Map();
  let mode = "points";
  let onCaseClick = () => {};
  let regionHeat = [];  // [lat, lng, weight] of the regions' counts, when no case is drawn
  const clusters = L.markerClusterGroup({
    chunkedLoading: true, maxClusterRadius: 46, showCoverageOnHover: false, spiderfyOnMaxZoom: true,
    disableClusteringAtZoom: 17, iconCreateFunction: clusterIcon,
  });
  clusters.addTo(map);
  const heat = L.heatLayer([], {
    radius: 22, blur: 20, maxZoom: 14, minOpacity: 0.35,
    gradient: { 0.15: "#1d39c4", 0.35: "#13c2c2", 0.55: "#a0d911", 0.75: "#fadb14", 1: "#ff4d4f" },
  });

  function makeMarker(s) {
    const marker = L.marker([s.coords[1], s.coords[0]], { icon: markerIcon(s), keyboard: false, lv: level(s), riseOnHover: true });
    marker.caseSummary = s;
    marker.bindTooltip(() => tooltipNode(marker.caseSummary), { direction: "top", offset: [0, -8], className: "cm-tooltip" });
    marker.on("click", () => onCaseClick(marker.caseSummary.id));
    return marker;
  }

  const refreshHeat = debounce(() => {
    // Switched back to points within the 300 ms: leaflet.heat redraws on a layer off the map
    // (no _map) and throws, so the data waits for the next switch to heat.
    if (!map.hasLayer(heat)) return;
    heat.setLatLngs(markers.size ? [...markers.values()].map((m) => {
      const s = m.caseSummary;
      return [s.coords[1], s.coords[0], level(s) === "overdue" ? 1 : 0.6];
    }) : regionHeat);
  }, 300);

  function afterChange() {
    container.dataset.cases = String(markers.size);
    if (mode === "heat") refreshHeat();
  }

  function setCases(summaries, heatPoints = []) {
    regionHeat = heatPoints;
    clusters.clearLayers();
    markers.clear();
    const list = [];
    for (const s of summaries) {
      if (!s.coords) continue;
      const marker = makeMarker(s);
      markers.set(s.id, marker);
      list.push(marker);
    }
    clusters.addLayers(list);
    afterChange();
  }

  // Move or restyle a marker already on the map.
  function update(existing, s) {
    const old = existing.caseSummary;
    existing.caseSummary = s;
    const moved = !old.coords || old.coords[0] !== s.coords[0] || old.coords[1] !== s.coords[1];
    const relevel = level(old) !== level(s);
    if (moved || relevel) {
      // markercluster keeps markers by position and recounts clusters on re-adding.
      clusters.removeLayer(existing);
      existing.setLatLng([s.coords[1], s.coords[0]]);
      existing.options.lv = level(s);
      existing.setIcon(markerIcon(s));
      clusters.addLayer(existing);
    } else {
      existing.setIcon(markerIcon(s));
    }
  }

  // Add, move or restyle one case in place (visible=false removes it).
  function upsert(s, visible) {
    const existing = markers.get(s.id);
    if (!visible || !s.coords) {
      if (existing) { clusters.removeLayer(existing); markers.delete(s.id); afterChange(); }
      return;
    }
    if (existing) {
      update(existing, s);
    } else {
      const marker = makeMarker(s);
      markers.set(s.id, marker);
      clusters.addLayer(marker);
    }
    afterChange();
  }

  function setMode(next) {
    mode = next;
    if (mode === "heat") {
      map.removeLayer(clusters);
      heat.addTo(map);
      refreshHeat();
    } else {
      map.removeLayer(heat);
      clusters.addTo(map);
    }
  }

  return { markers, setCases, upsert, setMode, onClick: (handler) => { onCaseClick = handler; } };
}

// -- a pulse where something happens, the ring around the open case ----------------------------

function createHighlights(map, container, markers, occludedRight) {
  let ring = null;

  function pulse(s, kind = "new") {
    if (!s.coords) return;
    const node = L.marker([s.coords[1], s.coords[0]], {
      pane: "pulse", interactive: false, keyboard: false,
      icon: L.divIcon({ className: `pulse pulse-${kind}`, iconSize: [18, 18], html: el("span", {}, el("i"), el("i")) }),
    }).addTo(map);
    setTimeout(() => node.remove(), 3600);
  }

  function clearFocus() {
    if (ring) { ring.remove(); ring = null; }
  }

  function focus(s) {
    clearFocus();
    if (!s || !s.coords) return;
    const latlng = [s.coords[1], s.coords[0]];
    // The case itself is drawn inside the ring: in a cluster its own marker is not shown.
    const known = markers.get(s.id);
    const shown = known ? known.caseSummary : s;
    const group = GROUP_OF_STATUS[shown.status] || STATUS_GROUPS[0];
    ring = L.marker(latlng, {
      pane: "pulse", interactive: false, keyboard: false,
      icon: L.divIcon({ className: "focus", iconSize: [34, 34],
                        html: el("span", {}, el("span", { class: "focus-ring" }), el("span", { class: `cm cm-${group.key} lv-${level(shown)}` })) }),
    }).addTo(map);
    const zoom = Math.max(map.getZoom(), 15);
    // Centre the case in the part of the map the drawer leaves visible.
    const hidden = occludedRight ? occludedRight(container.getBoundingClientRect()) : 0;
    const target = map.unproject(map.project(latlng, zoom).add([hidden / 2, 0]), zoom);
    map.flyTo(target, zoom, { duration: 0.6 });
  }

  return { pulse, focus, clearFocus };
}

// -- district labels with their case counts ----------------------------------------------------

function createDistrictLabels(map) {
  const labels = new Map();

  function add(feature) {
    const at = labelPoint(feature.geometry);
    if (!at) return;
    const node = el("div", { class: "dl" }, el("span", { class: "dl-name" }, feature.properties.name), el("span", { class: "dl-count" }));
    labels.set(feature.properties.name, { node, latlng: L.latLng(at), name: feature.properties.name, count: 0 });
    L.marker(at, { pane: "labels", interactive: false, keyboard: false,
                   icon: L.divIcon({ className: "dl-wrap", html: node, iconSize: [0, 0] }) }).addTo(map);
  }

  // Small central districts crowd each other at city zoom: the busier label wins the space.
  function declutter() {
    const placed = [];
    const byCount = [...labels.values()].sort((a, b) => b.count - a.count);
    for (const label of byCount) {
      const p = map.latLngToContainerPoint(label.latlng);
      const w = Math.max(label.name.length * 14, 48), h = 34;
      const box = { x0: p.x - w / 2, x1: p.x + w / 2, y0: p.y - h / 2, y1: p.y + h / 2 };
      const clash = placed.some((o) => box.x0 < o.x1 && box.x1 > o.x0 && box.y0 < o.y1 && box.y1 > o.y0);
      label.node.style.visibility = clash ? "hidden" : "";
      if (!clash) placed.push(box);
    }
  }

  // Open cases per district, from the server (the whole history, the toolbar's filters).
  function setServed(regions) {
    const counts = new Map(regions.map((r) => [r.name, r.open]));
    for (const [name, label] of labels) {
      label.count = counts.get(name) || 0;
      label.node.querySelector(".dl-count").textContent = label.count ? `${label.count} 件` : "";
    }
    declutter();
  }

  map.on("zoomend", declutter);
  return { add, setServed };
}

// -- what the map shows, from the server (GET /api/cases/map) -----------------------------------
// Below CASES_FROM_ZOOM: open cases counted per district / street / community (badges); from it
// on: the open cases inside the view, newest first, at most the server's cap, and how many more.
// The page never downloads a scope's cases: `query()` says what the toolbar and the drill-down
// ask for (category, department, status, area), the server counts and picks.

function createMapView(map, container, me, districtLabels, cases, { query, onView }) {
  const badges = L.layerGroup([], { pane: "labels" });
  badges.addTo(map);
  const scope = me.user.scope === me.city.id ? "" : me.user.scope;
  let request = 0;
  let view = null;  // the last answer: {level, total} or {level: "case", shown, more}
  let placed = false;  // the map has a centre and a zoom (set by `ready()`): nothing to ask before

  function badge(feature, region) {
    const at = labelPoint(feature.geometry);
    if (!at) return null;
    const title = `${region.name}：在办 ${region.open} 件${region.overdue ? `，超期 ${region.overdue} 件` : ""}`;
    const node = el("div", { class: `dl rc${region.overdue ? " rc-overdue" : ""}`, title, "data-region": region.id },
      el("span", { class: "dl-name" }, region.name), el("span", { class: "dl-count" }, `${region.open} 件`));
    return L.marker(at, { pane: "labels", interactive: false, keyboard: false,
                          icon: L.divIcon({ className: "dl-wrap", html: node, iconSize: [0, 0] }) });
  }

  // Region counts also feed the heat layer away from the cases: each region's open cases at
  // its label point.
  function heatOf(shapes, byId) {
    const points = [];
    const top = Math.max(1, ...[...byId.values()].map((r) => r.open));
    for (const f of shapes.features) {
      const region = byId.get(f.properties.id);
      const at = region && labelPoint(f.geometry);
      if (at) points.push([at[0], at[1], Math.max(0.15, region.open / top)]);
    }
    return points;
  }

  // The districts' labels carry their open cases at street level too: the streets' summed.
  async function districtTotals(regions, streets) {
    const districts = await jurisdictions("district");
    const parentOf = new Map(streets.features.map((f) => [f.properties.id, f.properties.parent]));
    const nameOf = new Map(districts.features.map((f) => [f.properties.id, f.properties.name]));
    const open = new Map();
    for (const r of regions) {
      const name = nameOf.get(parentOf.get(r.id));
      if (name) open.set(name, (open.get(name) || 0) + r.open);
    }
    return [...open].map(([name, n]) => ({ name, open: n }));
  }

  async function showRegions(zoom, mine) {
    const answer = await api.get(`/api/cases/map?zoom=${zoom}${query()}`);
    if (mine !== request) return;
    let shapes;
    if (answer.level === "district") shapes = await jurisdictions("district");
    else if (answer.level === "street") shapes = await jurisdictions("street", { within: scope });
    else shapes = await jurisdictions(answer.level, { bbox: bboxOf(map, 0.2), cached: false });
    if (mine !== request) return;
    const byId = new Map(answer.regions.map((r) => [r.id, r]));
    badges.clearLayers();
    if (answer.level === "district") {
      districtLabels.setServed(answer.regions);
    } else {
      if (answer.level === "street") districtLabels.setServed(await districtTotals(answer.regions, shapes));
      for (const f of shapes.features) {
        const region = byId.get(f.properties.id);
        const marker = region ? badge(f, region) : null;
        if (marker) badges.addLayer(marker);
      }
    }
    cases.setCases([], heatOf(shapes, byId));
    container.dataset.openTotal = String(answer.total.open);
    container.dataset.regionLevel = answer.level;
    container.dataset.regions = String(answer.regions.length);
    view = { level: answer.level, total: answer.total };
  }

  async function showCases(zoom, mine) {
    const answer = await api.get(`/api/cases/map?zoom=${zoom}&bbox=${bboxOf(map, 0.05)}${query()}`);
    if (mine !== request) return;
    badges.clearLayers();
    cases.setCases(answer.features.map(fromFeature));
    container.dataset.regionLevel = "case";
    container.dataset.regions = "0";
    view = { level: "case", shown: answer.features.length, more: answer.more };
  }

  async function refresh() {
    if (!placed) return;
    const zoom = Math.floor(map.getZoom());
    const mine = ++request;
    try {
      await (zoom >= CASES_FROM_ZOOM ? showCases(zoom, mine) : showRegions(zoom, mine));
      if (mine === request) onView(view);
    } catch (err) {
      if (mine === request) onView({ level: "error", message: err.message });
    }
  }

  const refreshSoon = debounce(refresh, 400);
  map.on("zoomend moveend", refreshSoon);
  setInterval(refreshSoon, 30000);  // cases move on: the counts follow within half a minute

  // A case changed: drawn in place when the map shows cases and it is in view; counted by the
  // next refresh otherwise.
  function changed(s, wanted) {
    if (!view || view.level !== "case") { refreshSoon(); return; }
    const inView = s.coords && map.getBounds().pad(0.05).contains([s.coords[1], s.coords[0]]);
    cases.upsert(s, wanted && inView);
  }

  // The part of the area where the open cases are: the streets holding four fifths of them
  // (a handful of cases says nothing of where the work is).
  async function busyBounds() {
    const answer = await api.get(`/api/cases/map?zoom=12${query()}`);
    if (answer.level !== "street" || answer.total.open < 10) return null;
    const shapes = await jurisdictions("street", { within: scope });
    const byId = new Map(shapes.features.map((f) => [f.properties.id, f]));
    let bounds = null, counted = 0;
    for (const region of answer.regions) {  // busiest first
      const feature = byId.get(region.id);
      if (!feature) continue;
      const b = L.geoJSON(feature).getBounds();
      bounds = bounds ? bounds.extend(b) : b;
      counted += region.open;
      if (counted >= 0.8 * answer.total.open) break;
    }
    return bounds;
  }

  async function start() {
    refreshSoon.cancel();  // (the moves that placed the map: this refresh asks for where it ended)
    placed = true;
    await refresh();
  }

  return { start, refresh, refreshSoon, changed, busyBounds, view: () => view };
}

// -- boundaries: districts, streets, the user's scope, finer levels when zoomed in -------------

function createBoundaries(map, container, me, districtLabels) {
  const cityId = me.city.id;
  const scope = me.user.scope;
  const scopeChain = new Set([cityId]);
  const state = { streetLayer: null, scopeLayer: null, communityLayer: null, gridLayer: null };
  const streetLabels = L.layerGroup([], { pane: "labels" });

  async function load() {
    const districts = await jurisdictions("district");
    const inScope = (f) => scope === cityId || scopeChain.has(f.properties.id);
    L.geoJSON(districts, {
      pane: "districts", interactive: false,
      style: (f) => (inScope(f) ? DISTRICT_STYLE : DISTRICT_OUTSIDE),
    }).addTo(map);
    for (const f of districts.features) districtLabels.add(f);
    container.dataset.districts = String(districts.features.length);

    const streets = await jurisdictions("street", { within: scope === cityId ? "" : scope });
    state.streetLayer = L.geoJSON(streets, { pane: "streets", interactive: false, style: STREET_STYLE });
    for (const f of streets.features) {
      const at = labelPoint(f.geometry);
      if (at) {
        streetLabels.addLayer(L.marker(at, {
          pane: "labels", interactive: false, keyboard: false,
          icon: L.divIcon({ className: "sl-wrap", html: el("span", { class: "sl" }, f.properties.name), iconSize: [0, 0] }),
        }));
      }
    }
    container.dataset.streets = String(streets.features.length);
    zoomLayers();
  }

  // The jurisdiction `scope` itself, looked up level by level (its ancestors join scopeChain).
  async function findScope() {
    for (const lvl of ["district", "street", "community", "grid"]) {
      const data = await jurisdictions(lvl, { within: scope });
      for (const f of data.features) scopeChain.add(f.properties.id);
      const feature = data.features.find((f) => f.properties.id === scope);
      if (feature) return feature;
    }
    return null;
  }

  // Where the user's scope is, and its outline (the city: no outline, its districts show it).
  async function fitScope(first) {
    if (scope === cityId) {
      map.fitBounds(cityBounds(me), { padding: [12, 12] });
      return;
    }
    if (!first && state.scopeLayer) {
      map.fitBounds(state.scopeLayer.getBounds(), { padding: [24, 24] });
      return;
    }
    const feature = await findScope();
    if (!feature) {
      map.fitBounds(cityBounds(me));
      return;
    }
    state.scopeLayer = L.geoJSON(feature, { pane: "scope", interactive: false, style: SCOPE_STYLE }).addTo(map);
    map.fitBounds(state.scopeLayer.getBounds(), { padding: [24, 24] });
  }

  // Finer levels only when zoomed in, fetched for the visible area.
  let fineRequest = 0;
  async function loadFine() {
    const zoom = map.getZoom();
    const request = ++fineRequest;
    const bbox = bboxOf(map, 0.2);
    const want = [];
    if (zoom >= COMMUNITIES_FROM_ZOOM) want.push(["community", COMMUNITY_STYLE, "communityLayer"]);
    if (zoom >= GRIDS_FROM_ZOOM) want.push(["grid", GRID_STYLE, "gridLayer"]);
    for (const key of ["communityLayer", "gridLayer"]) {
      if (!want.some((w) => w[2] === key) && state[key]) { state[key].remove(); state[key] = null; }
    }
    for (const [lvl, style, key] of want) {
      try {
        const data = await jurisdictions(lvl, { bbox, cached: false });
        if (request !== fineRequest) return;
        if (state[key]) state[key].remove();
        state[key] = L.geoJSON(data, { pane: "fine", interactive: false, style }).addTo(map);
      } catch (err) {
        // Finer boundaries are a nicety: the map stays usable without them.
      }
    }
  }
  const loadFineSoon = debounce(loadFine, 350);

  function zoomLayers() {
    const zoom = map.getZoom();
    if (state.streetLayer) {
      const show = zoom >= STREETS_FROM_ZOOM || scope !== cityId;
      if (show && !map.hasLayer(state.streetLayer)) state.streetLayer.addTo(map);
      if (!show && map.hasLayer(state.streetLayer)) state.streetLayer.remove();
    }
    const labels = zoom >= STREET_LABELS_FROM_ZOOM;
    if (labels && !map.hasLayer(streetLabels)) streetLabels.addTo(map);
    if (!labels && map.hasLayer(streetLabels)) streetLabels.remove();
    container.classList.toggle("zoom-far", zoom < 9.5);
    container.classList.toggle("zoom-near", zoom >= STREET_LABELS_FROM_ZOOM);
  }

  map.on("zoomend", zoomLayers);
  map.on("moveend", () => {
    if (map.getZoom() >= COMMUNITIES_FROM_ZOOM || state.communityLayer || state.gridLayer) loadFineSoon();
  });
  return { load, fitScope };
}

// -- picking a place ---------------------------------------------------------------------------

function createPicker(map, container) {
  let picking = null;

  function pick() {
    if (picking) picking(null);
    container.classList.add("picking");
    return new Promise((resolve) => {
      const done = (value) => {
        container.classList.remove("picking");
        map.off("click", onClick);
        document.removeEventListener("keydown", onKey);
        picking = null;
        resolve(value);
      };
      const onClick = (e) => done([+e.latlng.lng.toFixed(6), +e.latlng.lat.toFixed(6)]);
      const onKey = (e) => { if (e.key === "Escape") done(null); };
      map.on("click", onClick);
      document.addEventListener("keydown", onKey);
      picking = done;
    });
  }

  return { pick, cancelPick: () => { if (picking) picking(null); } };
}

// -- views -------------------------------------------------------------------------------------

async function fitBusy(map, view, animate = true) {
  const bounds = await view.busyBounds().catch(() => null);
  if (!bounds) return false;
  map.fitBounds(bounds.pad(0.1), { maxZoom: 14, animate });
  return true;
}

function addViewControl(map, { whole, busy }) {
  const Control = L.Control.extend({
    onAdd() {
      const box = el("div", { class: "leaflet-bar view-ctl", role: "group", "aria-label": "地图视图" },
        el("button", { type: "button", title: "显示整个辖区", onclick: whole }, "全域"),
        el("button", { type: "button", title: "缩放到案件集中的区域", onclick: busy }, "重点区域"));
      L.DomEvent.disableClickPropagation(box);
      return box;
    },
  });
  new Control({ position: "topright" }).addTo(map);
}

// -- the live map ------------------------------------------------------------------------------

export function createMap(container, { me, onCaseClick, occludedRight, query, onView }) {
  const map = makeLeafletMap(container, me);
  const districtLabels = createDistrictLabels(map);
  const cases = createCaseLayer(map, container);
  const highlights = createHighlights(map, container, cases.markers, occludedRight);
  const boundaries = createBoundaries(map, container, me, districtLabels);
  const view = createMapView(map, container, me, districtLabels, cases, { query, onView });
  const picker = createPicker(map, container);
  cases.onClick(onCaseClick);

  // The map placed and drawn. `busy`: open on the part of the area where the open cases are —
  // placed there before the cases are first asked for, so they are asked for once (asked for the
  // whole scope, then again where the map moved, the command centre's first counts cost four
  // requests of the server's busiest second).
  async function ready({ busy = false } = {}) {
    await boundaries.fitScope(true);
    await boundaries.load();
    if (busy) await fitBusy(map, view, false);
    await view.start();
    addViewControl(map, { whole: () => boundaries.fitScope(false), busy: () => fitBusy(map, view) });
  }

  return {
    map, ready, ...highlights, ...picker,
    changed: view.changed, setMode: cases.setMode, refresh: view.refresh,
    fitBusy: () => fitBusy(map, view),
    invalidate: () => map.invalidateSize(),
    refreshCounts: view.refreshSoon,
    count: () => cases.markers.size,
  };
}
