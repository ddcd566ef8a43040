"""Door-plate (门楼牌) geocoding from a city's optional ``addresses.csv`` (address,lng,lat).

``AddressBook.lookup(text)`` tries, in order:

1. the exact address;
2. the *normalized* address: NFKC (full-width → half-width digits/letters), whitespace and
   punctuation removed (hyphens kept: 12-3号 ≠ 123号), 號 → 号, a leading country/province
   prefix (中国, 浙江省, …) and the package's own city name (杭州市 / 杭州) dropped — also tried with
   the leading district (…区/县/市) dropped, when that short form is unambiguous;
3. the *door plate itself* (road + number): the normalized text without its district,
   street (…街道/镇/乡) and community (…社区/村) prefixes, on both sides — so
   "杭州市上城区东坡路3号" finds "上城区湖滨街道东坡路3号"; a district named in the text must be
   the address's; a plate two districts share is no guess; a bare trailing number ("东坡路3")
   is read as 号 (then 弄);
4. a *contained door plate*: the normalized text contains a known normalized address or door
   plate (e.g. "文三路123号门口有井盖缺失" contains "文三路123号"); the longest wins, then leftmost.

``nearest(lng, lat)`` is the reverse: the door plate closest to a point (within 200 m).

``suggest(prefix)`` serves the operator console's autocomplete: the door plate the prefix names
exactly ("东坡路3" → 东坡路3号) first, then normalized prefix matches (binary search in a sorted
key list) of the text and of its door plate, then substring matches.
"""

from __future__ import annotations

import bisect
import csv
import math
import re
import unicodedata

from geo.errors import CityPackageError  # a leaf: the geocoder needs the error, not the loader

_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−﹣－"), "-")
_DROP = re.compile(r"[\s\W_]+", re.UNICODE)  # whitespace, punctuation, symbols (hyphen handled below)
_PROVINCE = re.compile(r"^(?:中国|中华人民共和国)?(?:[\u4e00-\u9fff]{2,4}省|[\u4e00-\u9fff]{2,8}自治区)?")
_DISTRICT = re.compile(r"^[\u4e00-\u9fff]{1,6}?(?:区|县|市)")
_MIN_CONTAINED = 4  # a contained plate shorter than this (e.g. "1号") is not evidence
_STREET = re.compile(r"^[\u4e00-\u9fff]{1,8}?(?:街道|镇|乡)")
_COMMUNITY = re.compile(r"^[\u4e00-\u9fff]{1,8}?(?:社区|村)")
# What is left after a prefix is cut must still read as a road ("东坡路…"): two characters at
# least, so "新市街5号" does not lose "新市" as if it were a district.
_ROAD = re.compile(r"^[\u4e00-\u9fff]{2,}")
_PLATE_SUFFIXES = ("号", "弄")  # "东坡路3" means 东坡路3号 (or, failing that, 3弄)


def _cut(pattern: re.Pattern, key: str) -> tuple[str, str]:
    m = pattern.match(key)
    if m and _ROAD.match(key[m.end():]):
        return m.group(0), key[m.end():]
    return "", key


def plate_of(key: str) -> tuple[str, str]:
    """(district, door plate) of a normalized address: "上城区湖滨街道东坡路3号" →
    ("上城区", "东坡路3号")."""
    district, rest = _cut(_DISTRICT, key)
    _, rest = _cut(_STREET, rest)
    _, rest = _cut(_COMMUNITY, rest)
    return district, rest


class AddressBook:
    def __init__(self, rows, city_name: str | None = None):
        """rows: iterable of (address, lng, lat)."""
        self.city_name = city_name or ""
        prefixes = set()
        if self.city_name:
            prefixes.add(self.city_name)
            if self.city_name.endswith("市") and len(self.city_name) > 2:
                prefixes.add(self.city_name[:-1])  # 杭州市 → also 杭州
        self._city_prefixes = sorted(prefixes, key=len, reverse=True)
        self.entries: list[tuple[str, float, float]] = []
        self._exact: dict[str, int] = {}
        self._norm: dict[str, int] = {}
        short: dict[str, int] = {}
        short_ambiguous: set = set()
        for address, lng, lat in rows:
            if address in self._exact:
                continue
            idx = len(self.entries)
            self.entries.append((address, float(lng), float(lat)))
            self._exact[address] = idx
            key = self.normalize(address)
            if key and key not in self._norm:
                self._norm[key] = idx
            s = self._strip_district(key)
            if s and s != key:
                prev = short.get(s)
                if prev is None:
                    short[s] = idx
                elif self.entries[prev][1:] != self.entries[idx][1:]:
                    short_ambiguous.add(s)
        for s in short_ambiguous:
            short.pop(s, None)
        self._short = {k: v for k, v in short.items() if k not in self._norm}
        # door plates: (district, plate) → entry, and plate → entry where only one place has it
        self._district_of: list[str] = []
        self._by_district_plate: dict[tuple[str, str], int] = {}
        plates: dict[str, int] = {}
        plates_ambiguous: set = set()
        self._plates_sorted: list[tuple[str, int]] = []
        for idx, (address, lng, lat) in enumerate(self.entries):
            district, plate = plate_of(self.normalize(address))
            self._district_of.append(district)
            self._by_district_plate.setdefault((district, plate), idx)
            self._plates_sorted.append((plate, idx))
            prev = plates.get(plate)
            if prev is None:
                plates[plate] = idx
            elif self.entries[prev][1:] != self.entries[idx][1:]:
                plates_ambiguous.add(plate)
        self._plates = {k: v for k, v in plates.items() if k not in plates_ambiguous}
        self._districts = set(self._district_of) - {""}
        self._plates_sorted.sort()
        self._plate_keys = [k for k, _ in self._plates_sorted]
        # contained matching: every key (full and short) by length, longest first
        self._keys: dict[str, int] = {k: v for k, v in self._plates.items() if len(k) >= _MIN_CONTAINED}
        self._keys.update(self._short)
        self._keys.update(self._norm)
        self._lengths = sorted({len(k) for k in self._keys if len(k) >= _MIN_CONTAINED}, reverse=True)
        # suggest: sorted (key, idx) for prefix search
        self._sorted = sorted((k, i) for k, i in self._keys.items())
        self._sorted_keys = [k for k, _ in self._sorted]
        self._points = None  # (lng, lat) array, built on the first `nearest`

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_csv(cls, path: str, city_name: str | None = None) -> "AddressBook":
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                return cls.from_lines(fh, city_name)
        except UnicodeDecodeError as exc:
            raise CityPackageError(f"addresses.csv: 不是有效的 UTF-8 文本（{exc}）") from None

    @classmethod
    def from_lines(cls, lines, city_name: str | None = None) -> "AddressBook":
        """The door plates of `lines` (addresses.csv's text, line by line): the same checks and
        errors as the file (the admin API validates an imported version with it)."""
        file = "addresses.csv"
        rows = []
        try:
            reader = csv.reader(lines)
            header = next(reader, None)
            if header is None:
                return cls([], city_name)
            cols = [h.strip().lower() for h in header]
            try:
                ia, ix, iy = cols.index("address"), cols.index("lng"), cols.index("lat")
            except ValueError:
                raise CityPackageError(f"{file}: line 1: 表头须列出 address,lng,lat 三列") from None
            problems = []
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                try:
                    address = row[ia].strip()
                    lng, lat = float(row[ix]), float(row[iy])
                except (IndexError, ValueError):
                    problems.append(f"{file}: line {line_no}: 应为 address,lng,lat 三列，且 lng（经度）、lat（纬度）为数字")
                    continue
                if not address:
                    problems.append(f"{file}: line {line_no}: 地址为空")
                    continue
                if not (math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180 and -90 <= lat <= 90):
                    problems.append(f"{file}: line {line_no} ({address}): 坐标超出范围（经度须在 -180 到 180 之间，纬度须在 -90 到 90 之间）")
                    continue
                rows.append((address, lng, lat))
            if problems:
                msg = problems[0] if len(problems) == 1 else (
                    f"城市包有 {len(problems)} 处问题：\n  " + "\n  ".join(problems[:25])
                )
                raise CityPackageError(msg, problems)
        except csv.Error as exc:
            raise CityPackageError(f"{file}: CSV 语法错误：{exc}") from None
        return cls(rows, city_name)

    # ------------------------------------------------------------------ normalization
    def normalize(self, text: str) -> str:
        if not text:
            return ""
        s = unicodedata.normalize("NFKC", str(text)).translate(_DASHES).lower()
        s = s.replace("號", "号")
        s = "-".join(_DROP.sub("", part) for part in s.split("-"))
        s = s.strip("-")
        s = _PROVINCE.sub("", s, count=1)
        for prefix in self._city_prefixes:
            if s.startswith(prefix):
                s = s[len(prefix):]
                break
        return s

    @staticmethod
    def _strip_district(key: str) -> str:
        m = _DISTRICT.match(key)
        if m and len(key) - m.end() >= _MIN_CONTAINED:
            return key[m.end():]
        return key

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.entries)

    def _hit(self, idx: int):
        address, lng, lat = self.entries[idx]
        return lng, lat, address

    def lookup(self, text: str):
        """(lng, lat, matched_address) or None."""
        if not text or not self.entries:
            return None
        idx = self._exact.get(text.strip())
        if idx is not None:
            return self._hit(idx)
        key = self.normalize(text)
        if not key:
            return None
        idx = self._norm.get(key)
        if idx is None:
            idx = self._short.get(key)
        if idx is None:
            idx = self._short.get(self._strip_district(key))
        if idx is None:
            idx = self._plate(key)
        if idx is None and key[-1].isdigit():
            idx = next((i for suffix in _PLATE_SUFFIXES if (i := self._plate(key + suffix)) is not None), None)
        if idx is not None:
            return self._hit(idx)
        return self._contained(key)

    def _contained(self, key: str):
        # A district named at the start rules out a plate of another district ("西湖区东坡路3号"
        # is not 上城区's 东坡路3号).
        district = plate_of(key)[0]
        if district not in self._districts:  # "来电反映示例市…" names no district
            district = ""
        n = len(key)
        for length in self._lengths:
            if length > n:
                continue
            for i in range(n - length + 1):
                idx = self._keys.get(key[i:i + length])
                if idx is not None and not (district and self._district_of[idx] and self._district_of[idx] != district):
                    return self._hit(idx)
        return None

    def nearest(self, lng: float, lat: float, within_m: float = 200.0):
        """(address, metres) of the door plate nearest a point, or None if none is that close
        (reverse geocoding for a case located by GPS: "东坡路3号附近")."""
        if not self.entries:
            return None
        if self._points is None:
            import numpy as np  # only a book that is asked for reverse geocoding needs the arrays

            self._points = np.array([(x, y) for _, x, y in self.entries], dtype=float)
        import numpy as np

        # Metres on a local tangent plane: exact enough within a few hundred metres.
        dx = (self._points[:, 0] - lng) * (111_320.0 * math.cos(math.radians(lat)))
        dy = (self._points[:, 1] - lat) * 110_540.0
        d2 = dx * dx + dy * dy
        i = int(np.argmin(d2))
        metres = math.sqrt(float(d2[i]))
        if metres > within_m:
            return None
        return self.entries[i][0], round(metres)

    def _plate(self, key: str) -> int | None:
        """The entry whose door plate the key names (in the key's district, if it names one)."""
        district, plate = plate_of(key)
        if district:
            return self._by_district_plate.get((district, plate))
        return self._plates.get(plate)

    def suggest(self, prefix: str, limit: int = 10) -> list:
        """Up to `limit` {address, lng, lat}: the door plate named exactly, normalized-prefix
        matches (of the text, then of its door plate), then substring matches."""
        if not prefix or not prefix.strip() or limit <= 0:
            return []
        key = self.normalize(prefix)  # "" when only the city/province was typed: every address matches
        district, plate = plate_of(key)
        if district not in self._districts:
            district = ""
        out: list[int] = []
        seen: set = set()

        def take(idx: int) -> bool:
            """Adds a match (in the named district only); True once the list is full."""
            if idx not in seen and (not district or self._district_of[idx] == district):
                seen.add(idx)
                out.append(idx)
            return len(out) >= limit

        def prefixed(keys: list[str], pairs: list[tuple[str, int]], start: str) -> bool:
            pos = bisect.bisect_left(keys, start)
            while pos < len(pairs) and keys[pos].startswith(start):
                if take(pairs[pos][1]):
                    return True
                pos += 1
            return False

        if key and key[-1].isdigit():  # "东坡路3": 东坡路3号 before 东坡路30号
            for suffix in _PLATE_SUFFIXES:
                for k, idx in self._plates_sorted[bisect.bisect_left(self._plate_keys, plate + suffix):]:
                    if k != plate + suffix or take(idx):
                        break
        if (len(out) < limit and not prefixed(self._sorted_keys, self._sorted, key)
                and not (plate and prefixed(self._plate_keys, self._plates_sorted, plate))):
            for k, idx in self._sorted:
                if key in k and take(idx):
                    break
        if not out and (hit := self.lookup(prefix)):  # "东坡路3号楼": the plate it contains
            out.append(self._exact[hit[2]])
        return [{"address": self.entries[i][0], "lng": self.entries[i][1], "lat": self.entries[i][2]} for i in out]
