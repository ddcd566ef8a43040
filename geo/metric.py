"""Metres from longitude/latitude: a local transverse-Mercator frame centred on the city.

Routing compares distances in **metres** (``near_zone: {within_m: 30}``); degrees are never
compared to metres. Every city gets its own frame: a transverse Mercator (Gauss–Krüger)
projection on the WGS84 ellipsoid, scale factor 1 on a central meridian through the middle of
the city and northings measured from the city's central latitude, so coordinates stay small.

Error bound (documented, and checked in tests against an ellipsoidal geodesic):

* transverse Mercator is conformal; its point scale is ``k ≈ 1 + x² / (2 R²)`` at an easting
  ``x`` from the central meridian. For a city 200 km wide (|x| ≤ 100 km) ``k - 1 ≤ 1.3e-4``:
  a 30 m threshold is off by less than 4 mm, a 1 km distance by less than 13 cm;
* the series below (Snyder, *Map Projections — A Working Manual*, USGS PP 1395, eq. 8-9/8-10)
  are truncated at the 6th order in longitude difference; within ±3° of the central meridian
  the truncation error is below 1 mm.

No dependency beyond numpy/shapely (pyproj is not required).
"""

from __future__ import annotations

import math

import numpy as np
import shapely

# WGS84
A = 6378137.0
F = 1 / 298.257223563
E2 = F * (2 - F)
EP2 = E2 / (1 - E2)

_M1 = 1 - E2 / 4 - 3 * E2**2 / 64 - 5 * E2**3 / 256
_M2 = 3 * E2 / 8 + 3 * E2**2 / 32 + 45 * E2**3 / 1024
_M3 = 15 * E2**2 / 256 + 45 * E2**3 / 1024
_M4 = 35 * E2**3 / 3072


def _meridian_arc(phi):
    """Distance along the meridian from the equator to latitude `phi` (radians), metres."""
    return A * (_M1 * phi - _M2 * np.sin(2 * phi) + _M3 * np.sin(4 * phi) - _M4 * np.sin(6 * phi))


class LocalProjection:
    """Transverse Mercator centred on (lng0, lat0); x east, y north, metres, k0 = 1."""

    def __init__(self, lng0: float, lat0: float):
        if not (-180 <= lng0 <= 180 and -85 <= lat0 <= 85):
            raise ValueError(f"bad projection centre {lng0}, {lat0}")
        self.lng0 = float(lng0)
        self.lat0 = float(lat0)
        self._lam0 = math.radians(self.lng0)
        self._m0 = float(_meridian_arc(math.radians(self.lat0)))

    def __repr__(self) -> str:
        return f"LocalProjection(lng0={self.lng0:.6f}, lat0={self.lat0:.6f})"

    @classmethod
    def for_bounds(cls, minx: float, miny: float, maxx: float, maxy: float) -> "LocalProjection":
        return cls((minx + maxx) / 2.0, (miny + maxy) / 2.0)

    def forward(self, lng, lat):
        """(lng, lat) degrees → (x, y) metres; scalars or arrays (numpy broadcasting)."""
        lng = np.asarray(lng, dtype=float)
        lat = np.asarray(lat, dtype=float)
        phi = np.radians(lat)
        sin_phi = np.sin(phi)
        cos_phi = np.cos(phi)
        tan_phi = np.tan(phi)
        n = A / np.sqrt(1 - E2 * sin_phi * sin_phi)
        t = tan_phi * tan_phi
        c = EP2 * cos_phi * cos_phi
        a = (np.radians(lng) - self._lam0) * cos_phi
        a2 = a * a
        x = n * a * (1 + a2 / 6 * ((1 - t + c) + a2 / 20 * (5 - 18 * t + t * t + 72 * c - 58 * EP2)))
        y = (_meridian_arc(phi) - self._m0) + n * tan_phi * a2 * (
            0.5 + a2 / 24 * ((5 - t + 9 * c + 4 * c * c) + a2 / 30 * (61 - 58 * t + t * t + 600 * c - 330 * EP2))
        )
        return x, y

    def forward_one(self, lng: float, lat: float) -> tuple:
        """forward() for one point with plain floats (no numpy overhead): same formulas."""
        phi = math.radians(lat)
        sin_phi = math.sin(phi)
        cos_phi = math.cos(phi)
        tan_phi = sin_phi / cos_phi
        n = A / math.sqrt(1 - E2 * sin_phi * sin_phi)
        t = tan_phi * tan_phi
        c = EP2 * cos_phi * cos_phi
        a = (math.radians(lng) - self._lam0) * cos_phi
        a2 = a * a
        x = n * a * (1 + a2 / 6 * ((1 - t + c) + a2 / 20 * (5 - 18 * t + t * t + 72 * c - 58 * EP2)))
        arc = A * (_M1 * phi - _M2 * math.sin(2 * phi) + _M3 * math.sin(4 * phi) - _M4 * math.sin(6 * phi))
        y = (arc - self._m0) + n * tan_phi * a2 * (
            0.5 + a2 / 24 * ((5 - t + 9 * c + 4 * c * c) + a2 / 30 * (61 - 58 * t + t * t + 600 * c - 330 * EP2))
        )
        return x, y

    def _transform_coords(self, coords: np.ndarray) -> np.ndarray:
        x, y = self.forward(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def geometry(self, geom):
        """Project a shapely geometry (or an array of them) to this frame."""
        return shapely.transform(geom, self._transform_coords)

    def points(self, lng, lat):
        """An array of projected shapely Points for arrays of lng/lat."""
        x, y = self.forward(lng, lat)
        return shapely.points(np.atleast_1d(x), np.atleast_1d(y))

    def distance_m(self, lng1, lat1, lng2, lat2):
        """Straight-line distance in the frame (metres) — good to the bound in the module doc."""
        x1, y1 = self.forward(lng1, lat1)
        x2, y2 = self.forward(lng2, lat2)
        return np.hypot(x2 - x1, y2 - y1)


def geodesic_distance_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Ellipsoidal (WGS84) distance by Vincenty's inverse formula, metres.

    Used to verify the projection's error bound; converges for all but nearly antipodal points.
    """
    if lng1 == lng2 and lat1 == lat2:
        return 0.0
    b = A * (1 - F)
    L = math.radians(lng2 - lng1)
    u1 = math.atan((1 - F) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - F) * math.tan(math.radians(lat2)))
    sin_u1, cos_u1 = math.sin(u1), math.cos(u1)
    sin_u2, cos_u2 = math.sin(u2), math.cos(u2)
    lam = L
    for _ in range(200):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        sin_sigma = math.hypot(cos_u2 * sin_lam, cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam)
        if sin_sigma == 0:
            return 0.0
        cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
        sigma = math.atan2(sin_sigma, cos_sigma)
        sin_alpha = cos_u1 * cos_u2 * sin_lam / sin_sigma
        cos2_alpha = 1 - sin_alpha * sin_alpha
        cos_2sm = cos_sigma - 2 * sin_u1 * sin_u2 / cos2_alpha if cos2_alpha else 0.0
        c = F / 16 * cos2_alpha * (4 + F * (4 - 3 * cos2_alpha))
        lam_prev = lam
        lam = L + (1 - c) * F * sin_alpha * (
            sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1 + 2 * cos_2sm * cos_2sm))
        )
        if abs(lam - lam_prev) < 1e-12:
            break
    u_sq = cos2_alpha * (A * A - b * b) / (b * b)
    big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    delta_sigma = big_b * sin_sigma * (
        cos_2sm
        + big_b
        / 4
        * (
            cos_sigma * (-1 + 2 * cos_2sm * cos_2sm)
            - big_b / 6 * cos_2sm * (-3 + 4 * sin_sigma * sin_sigma) * (-3 + 4 * cos_2sm * cos_2sm)
        )
    )
    return b * big_a * (sigma - delta_sigma)
