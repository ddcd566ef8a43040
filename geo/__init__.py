"""Geography of a city package.

* geo.city — the city model (City, jurisdictions, zones, departments, categories, rules) the
  rest of the code uses;
* geo.loader — ``load_city(path)``: reads and validates a package folder, reporting every
  problem at once;
* geo.errors — ``CityPackageError`` and the ``file: where: problem`` record;
* geo.durations — time-limit strings (``4wh``, ``1wd``, ``2h``...), shared with the deadline clock;
* geo.metric (metric frame), geo.jurisdictions / geo.zones (spatial indexes), geo.geocode
  (door-plate geocoding).

geo never imports dispatch. Import the submodules directly (``from geo.loader import
load_city``); this package keeps its own import light.
"""
