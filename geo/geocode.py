"""Door-plate (门楼牌) geocoding from a city's optional ``addresses.csv`` (address,lng,lat).

``AddressBook.lookup(text)`` tries, in order:

1. the exact address;
2. the *normalized* address: NFKC (full-width → half-width digits/letters), whitespace and
   punctuation removed (hyphens kept: 12-3号 ≠ 123号), 號 → 号, a leading country/province
   prefix (中国, 浙江省, …) and the package's own city name (杭州市 / 杭州) dropped — also tried with
   the leading district (…区/县/市) dropped, when that short form is unambiguous;
3. a *contained door plate*: the normalized text contains a known normalized address
   (e.g. "文三路123号门口有井盖缺失" contains "文三路123号"); the longest wins, then leftmost.

``suggest(prefix)`` serves the operator console's autocomplete: normalized prefix matches
(binary search in a sorted key list) first, then substring matches.
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
        # contained matching: every key (full and short) by length, longest first
        self._keys: dict[str, int] = dict(self._short)
        self._keys.update(self._norm)
        self._lengths = sorted({len(k) for k in self._keys if len(k) >= _MIN_CONTAINED}, reverse=True)
        # suggest: sorted (key, idx) for prefix search
        self._sorted = sorted((k, i) for k, i in self._keys.items())
        self._sorted_keys = [k for k, _ in self._sorted]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_csv(cls, path: str, city_name: str | None = None) -> "AddressBook":
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                return cls.from_lines(fh, city_name)
        except UnicodeDecodeError as exc:
            raise CityPackageError(f"addresses.csv: not valid UTF-8 ({exc})") from None

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
                raise CityPackageError(f"{file}: line 1: header must name the columns address,lng,lat") from None
            problems = []
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                try:
                    address = row[ia].strip()
                    lng, lat = float(row[ix]), float(row[iy])
                except (IndexError, ValueError):
                    problems.append(f"{file}: line {line_no}: expected address,lng,lat with numeric lng/lat")
                    continue
                if not address:
                    problems.append(f"{file}: line {line_no}: empty address")
                    continue
                if not (math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180 and -90 <= lat <= 90):
                    problems.append(f"{file}: line {line_no} ({address}): coordinates out of range")
                    continue
                rows.append((address, lng, lat))
            if problems:
                msg = problems[0] if len(problems) == 1 else (
                    f"{len(problems)} problems in the city package:\n  " + "\n  ".join(problems[:25])
                )
                raise CityPackageError(msg, problems)
        except csv.Error as exc:
            raise CityPackageError(f"{file}: CSV syntax error: {exc}") from None
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
        if idx is not None:
            return self._hit(idx)
        n = len(key)
        for length in self._lengths:
            if length > n:
                continue
            for i in range(n - length + 1):
                idx = self._keys.get(key[i:i + length])
                if idx is not None:
                    return self._hit(idx)
        return None

    def suggest(self, prefix: str, limit: int = 10) -> list:
        """Up to `limit` {address, lng, lat}: normalized-prefix matches, then substring matches."""
        if not prefix or not prefix.strip() or limit <= 0:
            return []
        key = self.normalize(prefix)  # "" when only the city/province was typed: every address matches
        out: list[int] = []
        seen: set = set()
        pos = bisect.bisect_left(self._sorted_keys, key)
        while pos < len(self._sorted) and len(out) < limit and self._sorted_keys[pos].startswith(key):
            idx = self._sorted[pos][1]
            if idx not in seen:
                seen.add(idx)
                out.append(idx)
            pos += 1
        if len(out) < limit:
            for k, idx in self._sorted:
                if idx not in seen and key in k:
                    seen.add(idx)
                    out.append(idx)
                    if len(out) >= limit:
                        break
        return [{"address": self.entries[i][0], "lng": self.entries[i][1], "lat": self.entries[i][2]} for i in out]
