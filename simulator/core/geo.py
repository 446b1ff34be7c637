"""Geometry on the sphere, vectorised: distances, jitter inside a city, neighbours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EARTH_RADIUS_KM", "Neighbours", "haversine_km", "jitter", "neighbours", "unit_vectors"]

#: Mean Earth radius (IUGG).
EARTH_RADIUS_KM = 6371.0088


def haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km between paired points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Points as unit vectors in 3-D (n x 3), so that dot products give angles."""
    phi, lmb = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)], axis=1)


def jitter(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, radius_km: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points drawn uniformly in a disc of ``radius_km`` around each (lat, lon)."""
    n = len(lat)
    r = radius_km * np.sqrt(rng.random(n))
    theta = rng.random(n) * 2 * np.pi
    dlat = np.degrees(r * np.cos(theta) / EARTH_RADIUS_KM)
    coslat = np.maximum(np.cos(np.radians(lat)), 1e-6)
    dlon = np.degrees(r * np.sin(theta) / (EARTH_RADIUS_KM * coslat))
    new_lat = np.clip(lat + dlat, -90.0, 90.0)
    new_lon = (lon + dlon + 180.0) % 360.0 - 180.0
    return new_lat, new_lon


@dataclass(frozen=True)
class Neighbours:
    """For each query point, nearby target points as a CSR list sorted by distance.

    Attributes:
        offsets: ``offsets[i]:offsets[i+1]`` slices the lists of query ``i``.
        target: Index of each neighbour in the target set.
        distance_km: Distance of each neighbour.
    """

    offsets: np.ndarray
    target: np.ndarray
    distance_km: np.ndarray


def neighbours(
    query: np.ndarray, target: np.ndarray, radius_km: float, k: int, chunk: int = 512
) -> Neighbours:
    """Up to ``k`` nearest targets within ``radius_km`` of each query, nearest first.

    The nearest target is always kept, however far, so no list is empty.

    Args:
        query: Unit vectors (n x 3) from :func:`unit_vectors`.
        target: Unit vectors (m x 3).
        radius_km: Search radius.
        k: Maximum list length.
        chunk: Query rows per block of the distance matrix (bounds memory).
    """
    k = min(k, len(target))
    lists_t: list[np.ndarray] = []
    lists_d: list[np.ndarray] = []
    counts = np.zeros(len(query), dtype=np.int64)
    # Within the radius is a cosine above a threshold: the candidates are the few
    # entries past it, sorted per query; a query with none keeps its nearest target.
    threshold = np.cos(min(radius_km / EARTH_RADIUS_KM, np.pi))
    for lo in range(0, len(query), chunk):
        cos = np.clip(query[lo : lo + chunk] @ target.T, -1.0, 1.0)
        if k == 0:
            continue
        rows, cols = np.nonzero(cos >= threshold)
        lonely = np.flatnonzero(np.bincount(rows, minlength=len(cos)) == 0)
        rows = np.concatenate([rows, lonely])
        cols = np.concatenate([cols, cos[lonely].argmax(axis=1)])
        c = cos[rows, cols]
        order = np.lexsort((cols, -c, rows))
        rows, cols, c = rows[order], cols[order], c[order]
        first = np.searchsorted(rows, rows)  # rows are sorted: each row's first entry
        keep = np.arange(len(rows)) - first < k
        rows, cols, c = rows[keep], cols[keep], c[keep]
        counts[lo : lo + chunk] = np.bincount(rows, minlength=len(cos))
        lists_t.append(cols)
        lists_d.append(np.arccos(c) * EARTH_RADIUS_KM)
    offsets = np.zeros(len(query) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Neighbours(
        offsets=offsets,
        target=np.concatenate(lists_t).astype(np.int32) if lists_t else np.zeros(0, np.int32),
        distance_km=np.concatenate(lists_d) if lists_d else np.zeros(0),
    )
