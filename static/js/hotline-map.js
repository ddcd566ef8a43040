// The operator's map: the city's own districts and streets drawn as vector layers (no tile
// server needed), grids once zoomed in, a click sets the incident location.
import { debounce } from "./util.js";
import { bboxOf, cityBounds, createCityMap, jurisdictions, pointMarker, textTooltip } from "./map.js";

const STYLE = {
  district: { color: "#0d3b80", weight: 2, fillColor: "#dfe8f5", fillOpacity: 0.55 },
  street: { color: "#6b83a6", weight: 1, fill: true, fillOpacity: 0, dashArray: null },
  community: { color: "#8a9bb3", weight: 0.8, fill: true, fillOpacity: 0, dashArray: "3 4" },
  grid: { color: "#9fb1c9", weight: 0.6, fill: false, dashArray: "2 3" },
};
const COMMUNITY_ZOOM = 14;
const GRID_ZOOM = 16;  // grids drawn from here on (the operator zoomed in on purpose)
const FOCUS_ZOOM = 15; // a located incident: its 500 m search circle fits the map

function nameTooltip(feature, layer) {
  textTooltip(layer, feature.properties.name, { sticky: true, direction: "top", className: "map-tip" });
}

export function createMap(holder, me, { onPick }) {
  const map = createCityMap(holder, { me, fitCity: true, zoomControl: true, doubleClickZoom: false, keyboard: true });

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
  let marker = null, circle = null, gridBox = null;

  jurisdictions("district").then((data) => { districts.addData(data); districts.bringToBack(); })
    .catch(() => {});
  jurisdictions("street").then((data) => streets.addData(data)).catch(() => {});

  // Communities from street level on (the whole city's are a few hundred KB, loaded once).
  function showCommunities() {
    if (map.getZoom() < COMMUNITY_ZOOM) { communities.remove(); return; }
    if (!communitiesLoaded) {
      communitiesLoaded = jurisdictions("community")
        .then((data) => communities.addData(data)).catch(() => { communitiesLoaded = null; });
    }
    if (!map.hasLayer(communities)) { communities.addTo(map); streets.bringToFront(); }
  }
  map.on("zoomend", showCommunities);

  // Grids only when zoomed in, for the visible box: the whole city's grids are megabytes.
  const fetchGrids = debounce(async () => {
    const b = map.getBounds().pad(0.3);
    if (gridBox && gridBox.contains(map.getBounds())) return;
    try {
      const data = await jurisdictions("grid", { bbox: bboxOf(map, 0.3), cached: false });
      grids.clearLayers();
      grids.addData(data);
      gridBox = b;
    } catch { /* the street layer still orients the operator */ }
  }, 300);
  function loadGrids() {
    fetchGrids.cancel();
    if (map.getZoom() < GRID_ZOOM) { grids.clearLayers(); gridBox = null; return; }
    fetchGrids();
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
      if (label) textTooltip(marker, label, { direction: "top", offset: [0, -20] });
      map.setView([lat, lng], Math.max(map.getZoom(), FOCUS_ZOOM), { animate: false });
    },
    showSimilar(items, onChoose) {
      similar.clearLayers();
      for (const c of items) {
        if (!c.location) continue;
        const [lng, lat] = c.location.coordinates;
        pointMarker([lat, lng], { radius: 7, fillColor: "#d48806", tooltip: `${c.number} ${(c.category || {}).name || ""}` })
          .on("click", () => onChoose && onChoose(c))
          .addTo(similar);
      }
    },
    reset() {
      this.setLocation(null);
      similar.clearLayers();
      map.fitBounds(cityBounds(me), { animate: false });
    },
    resize() { map.invalidateSize(); },
  };
}
