"""Seeded incident points clustered around hotspots, shared by the benchmarks that need a
city's incidents (``incident_import`` in degrees, ``hotspot_run`` in metres)."""

from __future__ import annotations

import numpy as np


def clustered_points(
    n: int,
    rng: np.random.Generator,
    outline,
    centres_x: np.ndarray,
    centres_y: np.ndarray,
    *,
    share: float,
    sigma_m: float,
    metres_per_x: float = 1.0,
    metres_per_y: float = 1.0,
    decimals: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points inside ``outline`` (shapely, any coordinates): ``share`` of them around
    the centres, hotspots of very unequal weight (Pareto), normal with ``sigma_m`` metres
    (``metres_per_x``/``_y``: metres per coordinate unit, 1 for a metric outline); the rest
    uniform over the outline's bounds. With ``decimals``, coordinates are rounded before
    the inside test. Draws are taken in batches and those outside the outline dropped.
    """
    import shapely

    min_x, min_y, max_x, max_y = outline.bounds
    spots = len(centres_x)
    weights = rng.pareto(1.2, spots) + 0.05
    weights /= weights.sum()
    xs, ys, have = [], [], 0
    while have < n:
        want = int((n - have) * 1.3) + 100
        clustered = rng.random(want) < share
        spot = rng.choice(spots, size=want, p=weights)
        x = np.where(
            clustered,
            centres_x[spot] + rng.normal(0, sigma_m, want) / metres_per_x,
            rng.uniform(min_x, max_x, want),
        )
        y = np.where(
            clustered,
            centres_y[spot] + rng.normal(0, sigma_m, want) / metres_per_y,
            rng.uniform(min_y, max_y, want),
        )
        if decimals is not None:
            x, y = np.round(x, decimals), np.round(y, decimals)
        keep = shapely.contains_xy(outline, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]
