"""A configuration version written as a city package folder (SPEC §2), the format version 1
came from: loading the folder gives the same model (tests/test_admin_config_export.py).

The kinds of the version are written from their items, and knowledge.yaml from the knowledge
base's current articles when they are given (`items["knowledge"]`: the base is versioned by
article, not with the configuration); every other file of the source package
(jurisdictions.geojson, users.yaml, a README...) is copied as it is.
"""

from __future__ import annotations

import csv
import json
import os
import shutil

import yaml

from geo.loader import CALENDAR_KEYS, KIND_FILES

KNOWLEDGE_FILE = "knowledge.yaml"


def _yaml(path: str, header: str, data) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header)
        yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False, width=120)


def write_package(source: str, items: dict, out: str, version: int) -> list[str]:
    """Write the package of `items` (kind → items) into the folder `out`; the files written."""
    os.makedirs(out, exist_ok=True)
    header = f"# 由配置第 {version} 版导出（python -m dispatch.tools.export_city）\n"
    written = []
    for name in sorted(os.listdir(source)):
        full = os.path.join(source, name)
        if os.path.isfile(full) and name not in KIND_FILES.values():
            shutil.copyfile(full, os.path.join(out, name))
            written.append(name)
    with open(os.path.join(source, "city.yaml"), encoding="utf-8-sig") as fh:
        city = yaml.safe_load(fh) or {}
    city = {k: v for k, v in city.items() if k not in CALENDAR_KEYS}
    city.update({k: v for k, v in (items.get("calendar") or {}).items() if k in CALENDAR_KEYS})
    _yaml(os.path.join(out, "city.yaml"), header, city)
    for kind in ("departments", "categories", "rules"):
        _yaml(os.path.join(out, KIND_FILES[kind]), header, items.get(kind))
    if items.get("zones") or os.path.exists(os.path.join(source, "zones.geojson")):
        with open(os.path.join(out, "zones.geojson"), "w", encoding="utf-8") as fh:
            json.dump({"type": "FeatureCollection", "features": items.get("zones") or []}, fh, ensure_ascii=False)
    if items.get("addresses") or os.path.exists(os.path.join(source, "addresses.csv")):
        with open(os.path.join(out, "addresses.csv"), "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["address", "lng", "lat"])
            for plate in items.get("addresses") or []:
                writer.writerow([plate["address"], repr(float(plate["lng"])), repr(float(plate["lat"]))])
    if items.get("knowledge") is not None:
        _yaml(os.path.join(out, KNOWLEDGE_FILE), header.rstrip("\n") + "；知识库为导出时的当前条目\n",
              {"articles": items["knowledge"]})
    written += [f for f in KIND_FILES.values() if os.path.exists(os.path.join(out, f))]
    return sorted(set(written))
