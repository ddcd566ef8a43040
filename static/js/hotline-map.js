// The operator's map: the city's own districts and streets drawn as vector layers (no tile
// server needed), grids once zoomed in, a click sets the incident location.
import { api } from "./api.js";
import { el } from "./dom.js";

const STYLE = {
  district: { color: "#0d3b80", weight: 2, fillColor: "#dfe8f5", fillOpacity: 0.55 },
  street: { color: "#6b83a6", weight: 1, fill: true, fillOpacity: 0, dashArray: null },
  community: { color: "#8a9bb3", weight: 0.8, fill: true, fillOpacity: 0, dashArray: "3 4" },
  grid: { color: "#9fb1c9", weight: 0.6, fill: false, dashArray: "2 3" },
};
const COMMUNITY_ZOOM = 14;
const GRID_ZOOM = 16;  // grids drawn from here on (the operator zoomed in on purpose)
const FOCUS_ZOOM = 15; // a located incident: its 500 m search circle fits the map

// Leaflet reads a string tooltip as HTML: every tooltip gets a text node built by el().
function nameTooltip(feature, layer) {
  layer.bindTooltip(el("span", {}, feature.properties.name), { sticky: true, direction: "top", className: "map-tip" });
}

export function createMap(holder, me, { onPick }) {
  const [west, south, east, north] = me.city.bounds;
  const map = L.map(holder, { attributionControl: false, zoomControl: true, doubleClickZoom: false, keyboard: true })
    .fitBounds([[south, west], [north, east]]);
  if (me.map.tile_url) L.tileLayer(me.map.tile_url, { maxZoom: 19 }).addTo(map);

  const districts = L.geoJSON(null, { style: STYLE.district, interactive: false }).addTo(map);
  const streets = L.geoJSON(null, {
    style: STYLE.street,
    onEachFeature: nameTooltip,
  }).addTo(map);
  const communities = L.geoJSON(null, {
    style: STYLE.community,
    onEachFeature: nameTooltip,
  });
  const grids = L.geoJSON(null, { style: STYLE.grid, interactive: false }).addTo(map);
  let communitiesLoaded = null;
  const similar = L.layerGroup().addTo(map);
  let marker = null, circle = null, gridTimer = null, gridBox = null;

  api.get("/api/jurisdictions.geojson?level=district").then((data) => { districts.addData(data); districts.bringToBack(); })
    .catch(() => {});
  api.get("/api/jurisdictions.geojson?level=street").then((data) => streets.addData(data)).catch(() => {});

  // Communities from street level on (the whole city's are a few hundred KB, loaded once).
  function showCommunities() {
    if (map.getZoom() < COMMUNITY_ZOOM) { communities.remove(); return; }
    if (!communitiesLoaded) {
      communitiesLoaded = api.get("/api/jurisdictions.geojson?level=community")
        .then((data) => communities.addData(data)).catch(() => { communitiesLoaded = null; });
    }
    if (!map.hasLayer(communities)) { communities.addTo(map); streets.bringToFront(); }
  }
  map.on("zoomend", showCommunities);

  // Grids only when zoomed in, for the visible box: the whole city's grids are megabytes.
  function loadGrids() {
    clearTimeout(gridTimer);
    if (map.getZoom() < GRID_ZOOM) { grids.clearLayers(); gridBox = null; return; }
    gridTimer = setTimeout(async () => {
      const b = map.getBounds().pad(0.3);
      if (gridBox && gridBox.contains(map.getBounds())) return;
      const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((n) => n.toFixed(5)).join(",");
      try {
        const data = await api.get(`/api/jurisdictions.geojson?level=grid&bbox=${bbox}`);
        grids.clearLayers();
        grids.addData(data);
        gridBox = b;
      } catch { /* the street layer still orients the operator */ }
    }, 300);
  }
  map.on("zoomend moveend", loadGrids);

  map.on("click", (event) => onPick(event.latlng.lng, event.latlng.lat));
  for (const layer of [streets, communities]) layer.on("click", (event) => onPick(event.latlng.lng, event.latlng.lat));

  return {
    map,
    setLocation(lng, lat, label) {
      if (marker) marker.remove();
      if (circle) circle.remove();
      if (lng === null || lng === undefined) { marker = circle = null; return; }
      circle = L.circle([lat, lng], { radius: 500, color: "#1456b8", weight: 1, dashArray: "4 4", fillOpacity: 0.05, interactive: false }).addTo(map);
      marker = L.marker([lat, lng], {
        icon: L.divIcon({ className: "pin", html: "", iconSize: [22, 22], iconAnchor: [11, 22] }),
        keyboard: false,
      }).addTo(map);
      if (label) marker.bindTooltip(el("span", {}, label), { direction: "top", offset: [0, -20] });
      map.setView([lat, lng], Math.max(map.getZoom(), FOCUS_ZOOM), { animate: false });
    },
    showSimilar(items, onChoose) {
      similar.clearLayers();
      for (const c of items) {
        if (!c.location) continue;
        const [lng, lat] = c.location.coordinates;
        L.circleMarker([lat, lng], { radius: 7, color: "#fff", weight: 2, fillColor: "#d48806", fillOpacity: 1 })
          .bindTooltip(el("span", {}, `${c.number} ${(c.category || {}).name || ""}`))
          .on("click", () => onChoose && onChoose(c))
          .addTo(similar);
      }
    },
    reset() {
      this.setLocation(null);
      similar.clearLayers();
      map.fitBounds([[south, west], [north, east]], { animate: false });
    },
    resize() { map.invalidateSize(); },
  };
}
