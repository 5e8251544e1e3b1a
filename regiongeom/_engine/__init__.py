"""The exact enumeration of activation regions (private).

- :mod:`.core`: what both engines share (layers, patterns, buffers, limits,
  the result type :class:`.core.Subdivision`);
- :mod:`.mesh2d` and its kernels :mod:`._mesh2d_kernels` (the cuts) and
  :mod:`._mesh2d_roots` (roots and final faces): the 2D half-edge mesh, cut
  one layer at a time, with exact signs from :mod:`.filter2d` (rounding-error
  bounds and the exact fallback);
- :mod:`.line1d` and its kernels :mod:`._line1d_kernels` (the cut) and
  :mod:`._line1d_products` (the next layer's values): sorted points on an
  interval, with the next layer's product shared with a helper thread.
"""

from .core import DEFAULT_MAX_REGIONS, RegionLimitError
from .line1d import enumerate_1d
from .mesh2d import enumerate_2d

__all__ = ["DEFAULT_MAX_REGIONS", "RegionLimitError", "enumerate_1d", "enumerate_2d"]
