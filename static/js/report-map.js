// The location map of a report: the worker's community and its grids drawn from the city's
// own data (no tile server needed), a pin to drag, and the phone's GPS.
/* global L */
import { el } from "./dom.js";
import { bboxOf, createCityMap, jurisdictions, pinIcon, textTooltip } from "./map.js";
import { debounce } from "./util.js";

const GEO_ERRORS = {
  1: "定位权限被拒绝：请在手机设置中允许浏览器使用位置信息，或直接拖动地图上的图钉标出问题位置。",
  2: "暂时无法获取定位（信号弱或定位服务未开启），请拖动地图上的图钉标出问题位置。",
  3: "定位超时：请到开阔处点击“重新定位”，或拖动地图上的图钉标出问题位置。",
};
const NEIGHBOUR_ZOOM = 16;

function shortGridName(name) {
  const m = /(\d+)\s*网格$/.exec(name || "");
  return m ? m[1] : name;
}

/**
 * `onMove([lng, lat], how)` is called whenever the pin moves (how: "gps" | "map" | "default").
 * Returns {locate(), position(), invalidate(), scopeName}.
 */
export async function createLocationMap(container, status, { me, onMove }) {
  const map = createCityMap(container, { me, fitCity: true, zoomControl: true, zoomSnap: 0.25 });

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
    const scope = me.user.scope;
    const areas = scope === me.city.id ? null : await jurisdictions("community", { within: scope });
    if (areas && areas.features.length) {
      const outline = L.geoJSON(areas, { interactive: false, style: { color: "#1456b8", weight: 3, fillColor: "#1456b8", fillOpacity: 0.06 } }).addTo(map);
      map.fitBounds(outline.getBounds(), { padding: [12, 12] });
      if (areas.features.length <= 3) {
        const grids = await jurisdictions("grid", { within: scope });
        L.geoJSON(grids, {
          interactive: false,
          style: { color: "#1456b8", weight: 1, opacity: 0.7, dashArray: "4 3", fill: false },
          onEachFeature: (feature, layer) => {
            myGrids.add(feature.properties.id);
            textTooltip(layer, shortGridName(feature.properties.name), { permanent: true, direction: "center", className: "grid-label" });
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
    try {
      const data = await jurisdictions("grid", { bbox: bboxOf(map), cached: false });
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
