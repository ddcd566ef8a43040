// The one way the pages make a Leaflet map. The city's own boundaries are vector layers
// fetched from /api/jurisdictions.geojson (no tile server needed); a tile layer is drawn
// beneath them only when the server configures one (me.map: tile_url, overlay_url,
// attribution, subdomains, max_zoom). Leaflet is a classic
// script (window.L); nothing here touches it until a map is made.
//
//   configureMaps(me)              remember /api/me's city and tile URL (mountHeader calls it)
//   createCityMap(holder, options) an L.Map with the common options, the tile layer and, with
//                                  `fitCity`, the city's bounds in view
//   cityBounds(me)                 the city's bounds as Leaflet [[s, w], [n, e]]
//   fitSurely(map, bounds, opts)   fitBounds that still happens when asked during a zoom animation
//   jurisdictions(level, query)    the GeoJSON of one level (query: {within, bbox}), cached
//   bboxOf(map, pad)               "w,s,e,n" of the visible area (padded), for ?bbox=; null
//                                  when the map has no area on screen
//   textTooltip(layer, text, opts) a tooltip built as a text node (Leaflet parses strings as HTML)
//   pointMarker(latlng, opts)      a round marker (L.circleMarker) with a text tooltip
//   pinIcon()                      the red drop-shaped pin of a case location
//   labelCommunities(map, opts)    community names over their areas when zoomed in
/* global L */
import { api } from "./api.js";
import { el, svg } from "./dom.js";

const TILE_MAX_ZOOM = 19;
const COMMON = { attributionControl: false };

let city = null;

export function configureMaps(me) {
  city = me;
}

export function cityBounds(me = city) {
  const [west, south, east, north] = me.city.bounds;
  return [[south, west], [north, east]];
}

function baseMap(me) {
  return ((me || city || {}).map || {});
}

// The configured base map (天地图, a 政务底图, …): its tiles, an optional label overlay, and the
// credit line its licence asks for (shown as plain text in the corner).
function addBaseMap(map, config) {
  if (!config.tile_url) return;
  const options = { maxZoom: config.max_zoom || TILE_MAX_ZOOM, maxNativeZoom: config.max_zoom || TILE_MAX_ZOOM };
  if (config.subdomains) options.subdomains = config.subdomains;
  L.tileLayer(config.tile_url, { ...options, className: "base-tiles" }).addTo(map);
  if (config.overlay_url) L.tileLayer(config.overlay_url, { ...options, className: "base-overlay" }).addTo(map);
  if (config.attribution) {
    const Credit = L.Control.extend({
      options: { position: "bottomright" },
      onAdd: () => el("div", { class: "leaflet-control map-credit", role: "note" }, config.attribution),
    });
    new Credit().addTo(map);
  }
}

// The city package's own roads and places (optional roads.geojson / pois.geojson), drawn as
// vectors under the cases; their names appear once zoomed in far enough to read them.
const ROAD_NAMES_FROM = 14, POI_NAMES_FROM = 13;
function addCityLayers(map, layers) {
  if (!layers || !layers.length) return;
  const pane = map.createPane("citybase");
  pane.style.zIndex = "390";  // above the tiles and area fills, below outlines' labels and cases
  pane.style.pointerEvents = "none";
  const container = map.getContainer();
  const zoomed = () => {
    container.classList.toggle("road-names-hidden", map.getZoom() < ROAD_NAMES_FROM);
    container.classList.toggle("poi-names-hidden", map.getZoom() < POI_NAMES_FROM);
  };
  map.on("zoomend", zoomed);
  zoomed();
  if (layers.includes("roads")) {
    api.get("/api/basemap/roads.geojson").then((data) => {
      L.geoJSON(data, {
        pane: "citybase", interactive: false,
        style: (f) => ({ className: `map-road road-${f.properties.kind || "other"}`, weight: f.properties.kind === "primary" ? 4 : 3 }),
        onEachFeature: (f, layer) => {
          if (f.properties.name) textTooltip(layer, f.properties.name, { permanent: true, direction: "center", className: "road-name", pane: "citybase" });
        },
      }).addTo(map);
      container.dataset.roads = String(data.features.length);
    }).catch(() => { /* the map works without them */ });
  }
  if (layers.includes("pois")) {
    api.get("/api/basemap/pois.geojson").then((data) => {
      L.geoJSON(data, {
        pane: "citybase", interactive: false,
        pointToLayer: (f, latlng) => L.circleMarker(latlng, { pane: "citybase", radius: 4, weight: 1.5, className: `map-poi poi-${f.properties.kind || "other"}` }),
        onEachFeature: (f, layer) => textTooltip(layer, f.properties.name, { permanent: true, direction: "right", offset: [6, 0], className: "poi-name", pane: "citybase" }),
      }).addTo(map);
      container.dataset.pois = String(data.features.length);
    }).catch(() => { /* the map works without them */ });
  }
}

// Community names over their areas once zoomed in (from `minZoom`), for the part in view.
export function labelCommunities(map, { minZoom = 15, within } = {}) {
  const group = L.layerGroup().addTo(map);
  const load = async () => {
    if (map.getZoom() < minZoom) { group.clearLayers(); return; }
    const bbox = bboxOf(map, 0.1);
    if (!bbox) return;
    try {
      const data = await jurisdictions("community", { bbox, within, cached: false });
      group.clearLayers();
      for (const f of data.features) {
        const centre = L.geoJSON(f).getBounds().getCenter();
        group.addLayer(L.marker(centre, {
          interactive: false, keyboard: false,
          icon: L.divIcon({ className: "community-name", html: el("span", {}, f.properties.name), iconSize: null }),
        }));
      }
      map.getContainer().dataset.communityLabels = String(data.features.length);
    } catch { /* offline or refused: no labels */ }
  };
  map.on("moveend", load);
  load();
  return group;
}

export function createCityMap(holder, { me = city, fitCity = false, fitOptions, ...options } = {}) {
  const map = L.map(holder, { ...COMMON, ...options });
  addBaseMap(map, baseMap(me));
  addCityLayers(map, baseMap(me).layers);
  if (fitCity) map.fitBounds(cityBounds(me), fitOptions);
  return map;
}

// Leaflet ignores a new view asked for while a zoom animation runs (a second quick click in the
// drill-down would leave the map on the first place), so the view is asked for again when the
// running move ends. Asked for twice in a row, the second fit is a no-op.
export function fitSurely(map, bounds, options) {
  map.once("moveend", () => map.fitBounds(bounds, options));
  map.fitBounds(bounds, options);
}

// Boundaries change only with a new city file: one request per level and area per page.
const cache = new Map();

const EMPTY = () => Promise.resolve({ type: "FeatureCollection", features: [] });

// `bbox: null` (as bboxOf gives for a hidden map) is an empty area: nothing to ask for.
export function jurisdictions(level, { within, bbox, cached = true } = {}) {
  if (bbox === null) return EMPTY();
  let path = `/api/jurisdictions.geojson?level=${level}`;
  if (within) path += `&within=${encodeURIComponent(within)}`;
  if (bbox) path += `&bbox=${bbox}`;
  if (!cached) return api.get(path);
  if (!cache.has(path)) cache.set(path, api.get(path).catch((err) => { cache.delete(path); throw err; }));
  return cache.get(path);
}

// null while the map has no area on screen (a hidden tab measures 0 × 0: its bounds are one
// point, which the server rightly refuses as a box).
export function bboxOf(map, pad = 0) {
  const size = map.getSize();
  if (!size.x || !size.y) return null;
  const b = pad ? map.getBounds().pad(pad) : map.getBounds();
  const parts = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5));
  if (parts[0] === parts[2] || parts[1] === parts[3]) return null;
  return parts.join(",");
}

export function textTooltip(layer, text, options) {
  return layer.bindTooltip(el("span", {}, text), options);
}

export function pointMarker(latlng, { tooltip, tooltipOptions, ...style } = {}) {
  const marker = L.circleMarker(latlng, { radius: 8, color: "#fff", weight: 2, fillColor: "#cf1322", fillOpacity: 1, ...style });
  if (tooltip) textTooltip(marker, tooltip, tooltipOptions);
  return marker;
}

export const pinIcon = () => L.divIcon({
  className: "report-pin", iconSize: [34, 44], iconAnchor: [17, 42],
  html: svg("svg", { viewBox: "0 0 34 44", "aria-hidden": "true" },
    svg("path", { d: "M17 1C8.2 1 1 8 1 16.8 1 28.5 17 43 17 43s16-14.5 16-26.2C33 8 25.8 1 17 1z", fill: "#cf1322", stroke: "#fff", "stroke-width": "2" }),
    svg("circle", { cx: "17", cy: "16.5", r: "6", fill: "#fff" })),
});
