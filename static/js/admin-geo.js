// 区域与辖区: the zones (parks, rivers, expressways...) and the jurisdictions on a map; a new
// zones GeoJSON is shown against the current one (added, removed, changed) before it is
// published, and the server checks it as it checks the city package (self-intersections,
// coordinates, zones outside the city). 门牌地址: the door-plate registry, replaced or extended
// from a CSV file (address,lng,lat), every bad line listed by the server.
/* global L */
import { el } from "./dom.js";
import { createCityMap, jurisdictions, textTooltip } from "./map.js";
import { heading, loadKind, publishBar, select } from "./admin-common.js";

const COLORS = { same: "#1456b8", added: "#1f8a4c", removed: "#cf1322", changed: "#d48806" };
const zoneId = (f) => String((f.properties || {}).id ?? "");

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(new Error("无法读取文件"));
    reader.readAsText(file, "utf-8");
  });
}

function zoneDiff(current, proposed) {
  const before = new Map(current.map((f) => [zoneId(f), f]));
  const after = new Map(proposed.map((f) => [zoneId(f), f]));
  const state = new Map();
  for (const [id, f] of after) state.set(id, !before.has(id) ? "added" : JSON.stringify(f) === JSON.stringify(before.get(id)) ? "same" : "changed");
  for (const id of before.keys()) if (!after.has(id)) state.set(id, "removed");
  return state;
}

export async function renderZones(holder, { reload }) {
  const { version, items, editable } = await loadKind("zones");
  let proposed = items;
  const mapBox = el("div", { class: "admin-map", role: "img", "aria-label": "区域与辖区地图" });
  const summary = el("div", { role: "status" });
  const level = select("district", [["district", "区"], ["street", "街道"], ["community", "社区"]], { "aria-label": "显示辖区层级" });
  const file = el("input", { type: "file", accept: ".geojson,.json,application/geo+json,application/json", "aria-label": "导入区域 GeoJSON" });
  holder.append(
    heading("区域与辖区", version),
    el("p", { class: "muted" }, "区域用于“邻近某类区域”“位于某类区域内”的派遣规则。导入新的 GeoJSON（FeatureCollection，属性 id、name、kind）后先在地图上查看差异，再发布。辖区边界随城市包维护，这里只查看。"),
    el("div", { class: "toolbar" }, el("label", {}, "导入区域文件"), file, el("label", {}, "辖区层级"), level),
    el("div", { class: "legend" }, Object.entries({ same: "未变", added: "新增", changed: "修改", removed: "删除" })
      .map(([k, label]) => el("span", { dataset: { state: k }, "aria-label": label }, label))),
    mapBox, summary,
    publishBar({ kind: "zones", version: () => version, items: () => proposed, done: reload, editable }),
  );
  for (const span of holder.querySelectorAll(".legend span")) span.style.setProperty("--swatch", COLORS[span.dataset.state]);
  const map = createCityMap(mapBox, { fitCity: true });
  let boundaries = null;
  async function drawBoundaries() {
    const data = await jurisdictions(level.value);
    if (boundaries) boundaries.remove();
    boundaries = L.geoJSON(data, { style: { color: "#8c8c8c", weight: 1, fill: false, dashArray: "3 3" }, interactive: false }).addTo(map);
  }
  level.addEventListener("change", drawBoundaries);
  await drawBoundaries();
  let layer = null;
  function draw() {
    const state = zoneDiff(items, proposed);
    const removed = items.filter((f) => state.get(zoneId(f)) === "removed");
    if (layer) layer.remove();
    layer = L.geoJSON({ type: "FeatureCollection", features: [...proposed, ...removed] }, {
      style: (f) => ({ color: COLORS[state.get(zoneId(f))], weight: 3, fillOpacity: 0.15, dashArray: state.get(zoneId(f)) === "removed" ? "6 4" : null }),
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 6 }),
      onEachFeature: (f, l) => textTooltip(l, `${(f.properties || {}).name || zoneId(f)}（${(f.properties || {}).kind || ""}）`),
    }).addTo(map);
    const count = (k) => [...state.values()].filter((s) => s === k).length;
    const ids = (k) => [...state.entries()].filter(([, s]) => s === k).map(([id]) => id).join("、");
    summary.replaceChildren(proposed === items
      ? el("p", { class: "muted" }, `共 ${items.length} 个区域。`)
      : el("ul", {}, [["added", "新增"], ["changed", "修改"], ["removed", "删除"]].map(([k, label]) =>
        el("li", { dataset: { diff: k } }, `${label} ${count(k)} 个`, count(k) ? `：${ids(k)}` : ""))));
  }
  file.addEventListener("change", async () => {
    summary.replaceChildren();
    try {
      const data = JSON.parse(await readFile(file.files[0]));
      if (!data || data.type !== "FeatureCollection" || !Array.isArray(data.features)) throw new Error("文件不是 GeoJSON FeatureCollection");
      proposed = data.features;
      draw();
    } catch (err) {
      summary.replaceChildren(el("div", { class: "problems", role: "alert" }, `无法读取：${err.message}`));
    }
  });
  draw();
}

// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks.
export function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(field); field = ""; } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += ch;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

export async function renderAddresses(holder, { reload }) {
  const { version, items, editable } = await loadKind("addresses");
  let proposed = items;
  const search = el("input", { type: "search", placeholder: "查找门牌", "aria-label": "查找门牌" });
  const file = el("input", { type: "file", accept: ".csv,text/csv", "aria-label": "导入门牌 CSV" });
  const mode = select("replace", [["replace", "替换全部门牌"], ["merge", "追加 / 覆盖同名门牌"]], { "aria-label": "导入方式" });
  const info = el("div", { role: "status" });
  const tbody = el("tbody", {});
  function drawRows() {
    const q = search.value.trim();
    const shown = (q ? proposed.filter((a) => String(a.address).includes(q)) : proposed).slice(0, 100);
    tbody.replaceChildren(...shown.map((a) => el("tr", {}, el("td", {}, a.address), el("td", {}, String(a.lng)), el("td", {}, String(a.lat)))));
  }
  search.addEventListener("input", drawRows);
  file.addEventListener("change", async () => {
    info.replaceChildren();
    const rows = parseCsv((await readFile(file.files[0])).replace(/^\uFEFF/, ""));
    const header = (rows.shift() || []).map((h) => h.trim().toLowerCase());
    const [ia, ix, iy] = ["address", "lng", "lat"].map((c) => header.indexOf(c));
    if (ia < 0 || ix < 0 || iy < 0) {
      info.append(el("div", { class: "problems", role: "alert" }, "CSV 第 1 行须是列名 address,lng,lat"));
      return;
    }
    // Kept as text: the server reads the numbers and names every line it cannot use.
    const imported = rows.filter((r) => r.some((c) => c.trim())).map((r) => ({ address: (r[ia] || "").trim(), lng: r[ix] ?? "", lat: r[iy] ?? "" }));
    if (mode.value === "merge") {
      const byAddress = new Map(items.map((a) => [a.address, a]));
      for (const a of imported) byAddress.set(a.address, a);
      proposed = [...byAddress.values()];
    } else proposed = imported;
    info.append(el("p", {}, `已读取 ${imported.length} 条门牌；发布后共 ${proposed.length} 条（原有 ${items.length} 条）。`));
    drawRows();
  });
  holder.append(
    heading("门牌地址", version),
    el("p", { class: "muted" }, `共 ${items.length} 条门牌。热线工单只填地址时，用门牌库定位。导入的 CSV 须含 address,lng,lat 三列（WGS84 经纬度）。`),
    el("div", { class: "toolbar" }, el("label", {}, "导入 CSV"), file, mode, search),
    info,
    el("table", { class: "grid-table" }, el("thead", {}, el("tr", {}, el("th", {}, "地址"), el("th", {}, "经度"), el("th", {}, "纬度"))), tbody),
    publishBar({ kind: "addresses", version: () => version, items: () => proposed, done: reload, editable }),
  );
  drawRows();
}
