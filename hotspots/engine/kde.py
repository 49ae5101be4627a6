"""Quartic (biweight) kernel density on a regular grid (pure numpy, no database).

Coordinates are metric (metres, in the analysis area's projected CRS). The density of
a cell is the exact kernel sum at the cell centre (no FFT, no binning of the points):

    density(c) = Σ_i w_i · 3/(π h²) · (1 − d_ic²/h²)²   for d_ic < h, else 0

in events per m², reported **per km²**. The kernel integrates to 1, so the density
integrated over a grid that contains every kernel footprint equals the number of
events (or the sum of the weights).

Default bandwidth (ArcGIS Kernel Density, domain reference §6.6)::

    h = 0.9 · min(SD, √(1/ln 2) · Dm) · n^(−0.2)

with SD the standard distance, Dm the median distance to the mean centre and n the
number of points (the sum of the weights when weighted). Default cell size: the shorter
side of the output extent / 250.

Speed: points are located in grid cells; each (row, column) offset of the kernel
footprint is handled in one vectorised pass. Offsets whose source cell lies entirely
inside the kernel radius use 9 per-cell moment sums of the points (the quartic kernel is
a polynomial in the coordinates), offsets that cross the radius are summed point by
point, offsets entirely outside are skipped. 1,000,000 points on a 250 × 300 grid take
about a second on a 2-core machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DEFAULT_CELLS_ON_SHORT_SIDE = 250
MAX_CELLS = 25_000_000
_PAIRS_PER_PASS = 2_000_000


@dataclass(frozen=True)
class KDEResult:
    """A density grid.

    ``density[r, c]`` (events per km²) is the value at the centre of the cell
    ``(origin_x + (c + 0.5)·cell_size, origin_y + (r + 0.5)·cell_size)``: row 0 is the
    **southern** row (use ``density[::-1]`` for a north-up raster). ``origin`` is the
    lower-left corner of the grid.
    """

    origin: tuple[float, float]
    cell_size: float
    density: np.ndarray
    bandwidth: float
    bandwidth_rule: dict = field(default_factory=dict)
    cell_size_rule: dict = field(default_factory=dict)
    n_points: int = 0
    total_weight: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.density.shape

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) of the grid (may reach slightly past the request)."""
        rows, cols = self.density.shape
        x0, y0 = self.origin
        return (x0, y0, x0 + cols * self.cell_size, y0 + rows * self.cell_size)

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """(xs of the columns, ys of the rows) of the cell centres."""
        rows, cols = self.density.shape
        x0, y0 = self.origin
        return (
            x0 + (np.arange(cols) + 0.5) * self.cell_size,
            y0 + (np.arange(rows) + 0.5) * self.cell_size,
        )

    def total(self) -> float:
        """∫ density dA over the grid, in events (≈ total_weight when the grid is large)."""
        return float(self.density.sum() * (self.cell_size / 1000.0) ** 2)


def _as_points(xs, ys, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = np.asarray(xs, dtype=float).ravel()
    y = np.asarray(ys, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError("xs and ys must have the same length")
    if x.size == 0:
        raise ValueError("no points")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("coordinates contain NaN or infinite values")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=float).ravel()
        if w.shape != x.shape:
            raise ValueError("weights must have one value per point")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative")
        if not w.sum() > 0:
            raise ValueError("weights sum to zero")
    return x, y, w


def _weighted_median(values: np.ndarray, weights: np.ndarray | None) -> float:
    if weights is None:
        return float(np.median(values))
    order = np.argsort(values, kind="stable")
    v, cw = values[order], np.cumsum(weights[order])
    half = cw[-1] / 2.0
    i = int(np.searchsorted(cw, half, side="left"))
    i = min(i, v.size - 1)
    if math.isclose(cw[i], half) and i + 1 < v.size:
        return float((v[i] + v[i + 1]) / 2.0)
    return float(v[i])


def default_bandwidth(xs, ys, weights=None) -> tuple[float, dict]:
    """ArcGIS' default search radius and a record of how it was obtained.

    ``h = 0.9 · min(SD, √(1/ln 2)·Dm) · n^(−0.2)``; with weights, the mean centre, SD and
    the median are weighted and n is the sum of the weights. Returns ``(h, record)``;
    h is 0 when every point coincides.
    """
    x, y, w = _as_points(xs, ys, weights)
    total = float(x.size if w is None else w.sum())
    mx = float(np.average(x, weights=w))
    my = float(np.average(y, weights=w))
    d = np.hypot(x - mx, y - my)
    sd = float(np.sqrt(np.average(d * d, weights=w)))
    dm = _weighted_median(d, w)
    robust = math.sqrt(1.0 / math.log(2.0)) * dm
    spread = min(sd, robust)
    h = 0.9 * spread * total**-0.2
    record = {
        "rule": "arcgis_default",
        "formula": "0.9 * min(SD, sqrt(1/ln 2) * Dm) * n^-0.2",
        "standard_distance": sd,
        "median_distance": dm,
        "term_used": "standard_distance" if sd <= robust else "median_distance",
        "n": total,
        "mean_center": [mx, my],
        "bandwidth": h,
    }
    return h, record


def _quartic_sum(
    fx: np.ndarray,
    fy: np.ndarray,
    w: np.ndarray | None,
    radius: float,
    n_rows: int,
    n_cols: int,
    method: str = "auto",
) -> np.ndarray:
    """Σ_i w_i (1 − d²/radius²)² over points within ``radius`` of each cell centre.

    Everything is in cell units: the grid origin is (0, 0), cell (r, c) has its centre at
    (c + 0.5, r + 0.5), the points are at (fx, fy). ``method``: "moments", "points" or
    "auto" (the cheaper of the two by an operation count).
    """
    reach = int(math.floor(radius + 0.5)) + 1
    ci = np.floor(fx).astype(np.int64)
    ri = np.floor(fy).astype(np.int64)
    keep = (ci >= -reach) & (ci < n_cols + reach) & (ri >= -reach) & (ri < n_rows + reach)
    if not keep.all():
        fx, fy, ci, ri = fx[keep], fy[keep], ci[keep], ri[keep]
        w = None if w is None else w[keep]
    out = np.zeros((n_rows, n_cols))
    if fx.size == 0:
        return out
    pr, pc = n_rows + 2 * reach, n_cols + 2 * reach
    a = ci + 0.5 - fx  # centre of the source cell minus the point, in (−0.5, 0.5]
    b = ri + 0.5 - fy
    r2 = radius * radius

    span = np.arange(-reach, reach + 1)
    di_grid, dj_grid = (g.ravel() for g in np.meshgrid(span, span, indexing="ij"))
    near = np.maximum(np.abs(dj_grid) - 0.5, 0) ** 2 + np.maximum(np.abs(di_grid) - 0.5, 0) ** 2
    far = (np.abs(dj_grid) + 0.5) ** 2 + (np.abs(di_grid) + 0.5) ** 2
    reachable = near < r2  # some point of the source cell can be within the radius
    pairs = np.column_stack([di_grid, dj_grid])
    inside = [tuple(o) for o in pairs[reachable & (far <= r2)].tolist()]
    partial = [tuple(o) for o in pairs[reachable & (far > r2)].tolist()]

    if method == "auto":
        n_out = (n_rows + 4 * reach) * (n_cols + 4 * reach)

        def pointwise(n_offsets: int) -> int:  # pairs + one grid-sized pass per chunk
            return n_offsets * fx.size + (n_offsets * fx.size // _PAIRS_PER_PASS + 1) * n_out

        cost_moments = len(inside) * pr * pc + 9 * fx.size + pointwise(len(partial))
        cost_points = pointwise(len(inside) + len(partial))
        method = "moments" if cost_moments < cost_points else "points"
    if method == "points":
        partial, inside = partial + inside, []
    elif method != "moments":
        raise ValueError(f"unknown method {method!r}")

    if inside:
        src = (ri + reach) * pc + (ci + reach)

        def bincount(values):
            return np.bincount(src, weights=values, minlength=pr * pc).reshape(pr, pc)

        ww = np.ones_like(a) if w is None else w
        rr = a * a + b * b
        m0, ma, mb = bincount(ww), bincount(ww * a), bincount(ww * b)
        maa, mbb, mab = bincount(ww * a * a), bincount(ww * b * b), bincount(ww * a * b)
        mar, mbr, mrr = bincount(ww * a * rr), bincount(ww * b * rr), bincount(ww * rr * rr)
        for di, dj in inside:
            # v = r² − (dj + a)² − (di + b)² = α + β·a + γ·b − (a² + b²); Σ w v² by moments
            alpha = r2 - (dj * dj + di * di)
            beta, gamma = -2.0 * dj, -2.0 * di
            contrib = (
                alpha * alpha * m0
                + beta * beta * maa
                + gamma * gamma * mbb
                + mrr
                + 2 * alpha * beta * ma
                + 2 * alpha * gamma * mb
                - 2 * alpha * (maa + mbb)
                + 2 * beta * gamma * mab
                - 2 * beta * mar
                - 2 * gamma * mbr
            )
            # the cell `di` rows / `dj` columns away from the source receives it
            out += contrib[reach - di : reach - di + n_rows, reach - dj : reach - dj + n_cols]

    # point by point, a chunk of offsets at a time (about _PAIRS_PER_PASS point-offset
    # pairs), accumulated on the padded grid so that every target index is in range
    if partial:
        pad = 2 * reach  # kept points lie within `reach` of the grid, targets within 2·reach
        qr, qc = n_rows + 2 * pad, n_cols + 2 * pad
        src = (ri + pad) * qc + (ci + pad)
        acc = np.zeros(qr * qc)
        offsets = np.array(partial, dtype=np.int64).reshape(-1, 2)
        step = max(1, _PAIRS_PER_PASS // fx.size)
        for start in range(0, len(offsets), step):
            di = offsets[start : start + step, 0]
            dj = offsets[start : start + step, 1]
            dx = dj[None, :] + a[:, None]
            dy = di[None, :] + b[:, None]
            v = np.maximum(r2 - dx * dx - dy * dy, 0.0)
            k = v * v if w is None else v * v * w[:, None]
            target = src[:, None] + (di * qc + dj)[None, :]
            acc += np.bincount(target.ravel(), weights=k.ravel(), minlength=acc.size)
        out += acc.reshape(qr, qc)[pad : pad + n_rows, pad : pad + n_cols]
    return out / (r2 * r2)


def kde_grid(
    xs,
    ys,
    *,
    bandwidth: float | None = None,
    cell_size: float | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    weights=None,
    max_cells: int = MAX_CELLS,
) -> KDEResult:
    """Quartic kernel density of points on a regular grid.

    Parameters
    ----------
    xs, ys:
        Point coordinates in metres (projected CRS).
    bandwidth:
        Kernel radius h in metres; ``None`` → :func:`default_bandwidth`.
    cell_size:
        Grid cell side in metres; ``None`` → shorter side of the output extent / 250.
    bounds:
        ``(min_x, min_y, max_x, max_y)`` of the output grid in metres. ``None`` → the
        points' extent grown by the bandwidth on every side (so no kernel mass is lost);
        the default cell size then uses the points' own extent, as ArcGIS does. Points
        outside the bounds still contribute to the cells within their radius.
    weights:
        Optional non-negative weight per point (e.g. a victim count).
    max_cells:
        Refuse grids with more cells than this.

    Returns
    -------
    :class:`KDEResult` — origin (lower-left corner), cell size, density ``(n_rows,
    n_cols)`` in events per km² (row 0 south), bandwidth and the records of the rules used.
    """
    x, y, w = _as_points(xs, ys, weights)
    if bandwidth is None:
        h, bw_record = default_bandwidth(x, y, w)
        if not h > 0:
            raise ValueError("cannot choose a bandwidth: the points have no spread; pass bandwidth")
    else:
        h = float(bandwidth)
        if not (math.isfinite(h) and h > 0):
            raise ValueError("bandwidth must be a positive number of metres")
        bw_record = {"rule": "user", "bandwidth": h}

    if bounds is None:
        data_extent = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
        extent_for_cell = data_extent
        min_x, min_y = data_extent[0] - h, data_extent[1] - h
        max_x, max_y = data_extent[2] + h, data_extent[3] + h
    else:
        min_x, min_y, max_x, max_y = (float(v) for v in bounds)
        if not (max_x > min_x and max_y > min_y):
            raise ValueError("bounds must be (min_x, min_y, max_x, max_y) with max > min")
        extent_for_cell = (min_x, min_y, max_x, max_y)

    if cell_size is None:
        sides = [
            extent_for_cell[2] - extent_for_cell[0],
            extent_for_cell[3] - extent_for_cell[1],
        ]
        positive = [s for s in sides if s > 0]
        if positive:
            c = min(positive) / DEFAULT_CELLS_ON_SHORT_SIDE
            cell_record = {
                "rule": "shorter_extent_side / 250",
                "extent_side": min(positive),
                "cell_size": c,
            }
        else:
            c = h / 10.0
            cell_record = {"rule": "bandwidth / 10 (points have no extent)", "cell_size": c}
    else:
        c = float(cell_size)
        if not (math.isfinite(c) and c > 0):
            raise ValueError("cell_size must be a positive number of metres")
        cell_record = {"rule": "user", "cell_size": c}

    n_cols = max(1, math.ceil((max_x - min_x) / c - 1e-9))
    n_rows = max(1, math.ceil((max_y - min_y) / c - 1e-9))
    if n_rows * n_cols > max_cells:
        raise ValueError(
            f"the grid would have {n_rows * n_cols:,} cells (limit {max_cells:,}); "
            "use a larger cell_size or smaller bounds"
        )

    sums = _quartic_sum((x - min_x) / c, (y - min_y) / c, w, h / c, n_rows, n_cols)
    # Σ (1 − d²/h²)² → kernel 3/(π h²) per m² → per km²
    density = sums * (3.0 / (math.pi * h * h)) * 1e6
    return KDEResult(
        origin=(min_x, min_y),
        cell_size=c,
        density=density,
        bandwidth=h,
        bandwidth_rule=bw_record,
        cell_size_rule=cell_record,
        n_points=int(x.size),
        total_weight=float(x.size if w is None else w.sum()),
    )
