// The location map of a report: the worker's community and its grids drawn from the city's
// own data (no tile server needed), a pin to drag, and the phone's GPS.
/* global L */
import { api } from "./api.js";
import { el, svg } from "./dom.js";
import { debounce } from "./report-common.js";

const GEO_ERRORS = {
  1: "定位权限被拒绝：请在手机设置中允许浏览器使用位置信息，或直接拖动地图上的图钉标出问题位置。",
  2: "暂时无法获取定位（信号弱或定位服务未开启），请拖动地图上的图钉标出问题位置。",
  3: "定位超时：请到开阔处点击“重新定位”，或拖动地图上的图钉标出问题位置。",
};
const NEIGHBOUR_ZOOM = 16;

const pinIcon = () => L.divIcon({
  className: "report-pin", iconSize: [34, 44], iconAnchor: [17, 42],
  html: svg("svg", { viewBox: "0 0 34 44", "aria-hidden": "true" },
    svg("path", { d: "M17 1C8.2 1 1 8 1 16.8 1 28.5 17 43 17 43s16-14.5 16-26.2C33 8 25.8 1 17 1z", fill: "#cf1322", stroke: "#fff", "stroke-width": "2" }),
    svg("circle", { cx: "17", cy: "16.5", r: "6", fill: "#fff" })),
});

function shortGridName(name) {
  const m = /(\d+)\s*网格$/.exec(name || "");
  return m ? m[1] : name;
}

/**
 * `onMove([lng, lat], how)` is called whenever the pin moves (how: "gps" | "map" | "default").
 * Returns {locate(), position(), invalidate(), scopeName}.
 */
export async function createLocationMap(container, status, { me, onMove }) {
  const map = L.map(container, { zoomControl: true, attributionControl: false, zoomSnap: 0.25 });
  if (me.map && me.map.tile_url) L.tileLayer(me.map.tile_url, { maxZoom: 19 }).addTo(map);
  const [w, s, e, n] = me.city.bounds;
  map.fitBounds([[s, w], [n, e]]);

  let pin = null, accuracy = null, position = null, userMoved = false;
  const myGrids = new Set();

  function place(lnglat, how) {
    position = lnglat;
    const latlng = [lnglat[1], lnglat[0]];
    if (!pin) {
      pin = L.marker(latlng, { draggable: true, icon: pinIcon(), keyboard: true, title: "问题位置（可拖动）", alt: "问题位置", zIndexOffset: 1000 }).addTo(map);
      pin.on("dragend", () => {
        const p = pin.getLatLng();
        userMoved = true;
        if (accuracy) { accuracy.remove(); accuracy = null; }
        place([round(p.lng), round(p.lat)], "map");
      });
    } else {
      pin.setLatLng(latlng);
    }
    onMove(position, how);
  }
  map.on("click", (event) => {
    userMoved = true;
    if (accuracy) { accuracy.remove(); accuracy = null; }
    place([round(event.latlng.lng), round(event.latlng.lat)], "map");
  });

  // The worker's own area: community outline and its grids.
  let scopeName = me.scope_name;
  try {
    const scope = encodeURIComponent(me.user.scope);
    const areas = me.user.scope === me.city.id ? null : await api.get(`/api/jurisdictions.geojson?level=community&within=${scope}`);
    if (areas && areas.features.length) {
      const outline = L.geoJSON(areas, { interactive: false, style: { color: "#1456b8", weight: 3, fillColor: "#1456b8", fillOpacity: 0.06 } }).addTo(map);
      map.fitBounds(outline.getBounds(), { padding: [12, 12] });
      if (areas.features.length <= 3) {
        const grids = await api.get(`/api/jurisdictions.geojson?level=grid&within=${scope}`);
        L.geoJSON(grids, {
          interactive: false,
          style: { color: "#1456b8", weight: 1, opacity: 0.7, dashArray: "4 3", fill: false },
          onEachFeature: (feature, layer) => {
            myGrids.add(feature.properties.id);
            layer.bindTooltip(el("span", {}, shortGridName(feature.properties.name)), { permanent: true, direction: "center", className: "grid-label" });
          },
        }).addTo(map);
      }
      if (!position) place(centre(outline.getBounds()), "default");
    }
  } catch { /* the map still works without the outlines */ }
  if (!position) place(centre(map.getBounds()), "default");

  // Neighbouring grids when zoomed in, so a pin dragged next door still shows its grid.
  const neighbours = L.layerGroup().addTo(map);
  const loadNeighbours = debounce(async () => {
    if (map.getZoom() < NEIGHBOUR_ZOOM) { neighbours.clearLayers(); return; }
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((x) => x.toFixed(5)).join(",");
    try {
      const data = await api.get(`/api/jurisdictions.geojson?level=grid&bbox=${bbox}`);
      data.features = data.features.filter((f) => !myGrids.has(f.properties.id));
      neighbours.clearLayers();
      neighbours.addLayer(L.geoJSON(data, { interactive: false, style: { color: "#7b8794", weight: 1, opacity: 0.6, fill: false } }));
    } catch { /* offline: no neighbours */ }
  }, 400);
  map.on("moveend", loadNeighbours);
  const labels = () => container.classList.toggle("grid-labels-hidden", map.getZoom() < 15);
  map.on("zoomend", labels);
  labels();

  function setStatus(kind, text) {
    status.className = `gps-status gps-${kind}`;
    status.replaceChildren(el("span", { class: "gps-dot", "aria-hidden": "true" }), text);
  }

  /** `auto`: the first fix at start-up, which must not undo a pin the worker already moved. */
  function locate({ auto = false } = {}) {
    if (!("geolocation" in navigator) || !window.isSecureContext) {
      setStatus("error", "当前浏览器无法使用定位（需通过 HTTPS 访问），请拖动地图上的图钉标出问题位置。");
      return;
    }
    setStatus("busy", "正在获取 GPS 定位…");
    navigator.geolocation.getCurrentPosition((pos) => {
      const { longitude, latitude, accuracy: metres } = pos.coords;
      if (auto && userMoved) { setStatus("ok", "已获取 GPS 定位；保留您在地图上选择的位置"); return; }
      userMoved = false;
      if (accuracy) accuracy.remove();
      accuracy = L.circle([latitude, longitude], { radius: metres || 0, interactive: false, color: "#1456b8", weight: 1, fillOpacity: 0.1 }).addTo(map);
      map.setView([latitude, longitude], Math.max(map.getZoom(), 16));
      setStatus("ok", `已定位${metres ? `（精度约 ${Math.round(metres)} 米）` : ""}，可拖动图钉微调`);
      place([round(longitude), round(latitude)], "gps");
    }, (err) => {
      setStatus("error", GEO_ERRORS[err.code] || "无法获取定位，请拖动地图上的图钉标出问题位置。");
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 0 });
  }

  return {
    locate,
    position: () => position,
    wasMovedByUser: () => userMoved,
    invalidate: () => map.invalidateSize(),
    scopeName,
    map,
  };
}

function centre(bounds) {
  const c = bounds.getCenter();
  return [round(c.lng), round(c.lat)];
}

function round(x) {
  return Math.round(x * 1e6) / 1e6;
}
