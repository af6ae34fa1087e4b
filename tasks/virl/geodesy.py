"""Distances and positions on the earth, as the paper's V-IRL env measures them.

The paper measures rail distances with geopy's ``geodesic`` (WGS-84 ellipsoid) and snaps points to panoramas
with a haversine distance on a sphere of radius 6,371 km. Both are reproduced: :func:`geodesic_m` solves
Vincenty's inverse problem on WGS-84, which agrees with geopy's geodesic to well under a millimetre at street
scale (the thresholds it decides are 5 and 8 metres), and :func:`haversine_m` is the paper's formula.
Generated cities live on a plane in metres; :class:`Plane` gives them the same interface.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]

_A = 6378137.0  # WGS-84
_F = 1 / 298.257223563
_B = _A * (1 - _F)
EARTH_RADIUS_M = 6371.0 * 1000  # the paper's haversine radius


def geodesic_m(p: Sequence[float], q: Sequence[float]) -> float:
    """Distance in metres between two (lat, lng) points on the WGS-84 ellipsoid (Vincenty's inverse)."""
    lat1, lon1, lat2, lon2 = float(p[0]), float(p[1]), float(q[0]), float(q[1])
    if lat1 == lat2 and lon1 == lon2:
        return 0.0
    u1 = math.atan((1 - _F) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - _F) * math.tan(math.radians(lat2)))
    big_l = math.radians(lon2 - lon1)
    lam = big_l
    sin_u1, cos_u1, sin_u2, cos_u2 = math.sin(u1), math.cos(u1), math.sin(u2), math.cos(u2)
    for _ in range(200):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        sin_sigma = math.hypot(cos_u2 * sin_lam, cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam)
        if sin_sigma == 0:
            return 0.0
        cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
        sigma = math.atan2(sin_sigma, cos_sigma)
        sin_alpha = cos_u1 * cos_u2 * sin_lam / sin_sigma
        cos2_alpha = 1 - sin_alpha**2
        cos_2sm = cos_sigma - 2 * sin_u1 * sin_u2 / cos2_alpha if cos2_alpha else 0.0
        c = _F / 16 * cos2_alpha * (4 + _F * (4 - 3 * cos2_alpha))
        prev = lam
        lam = big_l + (1 - c) * _F * sin_alpha * (
            sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1 + 2 * cos_2sm**2)))
        if abs(lam - prev) < 1e-12:
            break
    u_sq = cos2_alpha * (_A**2 - _B**2) / _B**2
    big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    delta_sigma = big_b * sin_sigma * (cos_2sm + big_b / 4 * (
        cos_sigma * (-1 + 2 * cos_2sm**2) - big_b / 6 * cos_2sm * (-3 + 4 * sin_sigma**2) * (-3 + 4 * cos_2sm**2)))
    return _B * big_a * (sigma - delta_sigma)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The paper's haversine distance in metres (used to snap points to panoramas)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (lon1, lat1, lon2, lat2))
    a = math.sin((lat2 - lat1) / 2.0) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2.0) ** 2
    return EARTH_RADIUS_M * 2 * math.asin(math.sqrt(a))


def interpolate(p: Sequence[float], q: Sequence[float], i: int, n: int) -> Point:
    """The paper's straight-line point ``i`` of ``n`` from ``p`` to ``q`` (``i == n`` is ``q`` itself)."""
    return (p[0] * (1 - i / n) + q[0] * (i / n), p[1] * (1 - i / n) + q[1] * (i / n))


class Earth:
    """(lat, lng) points: geodesic rail distances."""

    planar = False

    @staticmethod
    def distance(p: Sequence[float], q: Sequence[float]) -> float:
        return geodesic_m(p, q)


class Plane:
    """(x, y) points in metres (generated cities)."""

    planar = True

    @staticmethod
    def distance(p: Sequence[float], q: Sequence[float]) -> float:
        return math.hypot(q[0] - p[0], q[1] - p[1])
