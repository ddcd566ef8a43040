"""Geography of a city package: loading (geo.package), metric frame (geo.metric),
jurisdiction/zone helpers (geo.jurisdictions, geo.zones) and door-plate geocoding (geo.geocode).

Import the submodules directly (``from geo.package import load_city``); this package keeps its
own import light.
"""
