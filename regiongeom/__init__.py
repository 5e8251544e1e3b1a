"""regiongeom: exact geometry of the linear regions of piecewise-linear networks.

Networks -> (a plane or line through the data) -> activation regions -> nonlinear
locus -> measures -> figures, in float64. The regions are enumerated exactly on 1D and 2D
inputs; a network with more inputs is first restricted to a ``Plane`` or ``Line``. The
Monte Carlo measures (local complexity, local rank, total variation, vertex density) work
in any input dimension where their formula does.
"""

from . import bounds, closed_form, datasets, examples, images
from .activations import Activation, absolute, hardtanh, leaky_relu, relu
from .bounds import Bound
from .complexity import Estimate, lc_density, local_complexity
from .datasets import default_network
from .decision import decision_boundary
from .examples import sawtooth
from .graph import GraphNetwork
from .grids import grid_points
from .locus import LinearRegions, Locus, linear_regions, nonlinear_locus
from .measures import local_rank, not_good_count, total_variation
from .network import Network, from_torch
from .plotting import figure1, plot_density, plot_density_1d, plot_function_1d, plot_regions
from .regions import DEFAULT_MAX_REGIONS, RegionLimitError, RegionMap, activation_regions
from .slices import Line, Plane
from .tracker import History, Tracker
from .vertices import (
    corollary7_bound,
    corollary8_bound,
    gradient_bound,
    locus_vertices,
    vertex_density,
)

__version__ = "0.2.0"

__all__ = [
    "Activation",
    "Network",
    "GraphNetwork",
    "from_torch",
    "relu",
    "leaky_relu",
    "hardtanh",
    "absolute",
    "activation_regions",
    "RegionMap",
    "RegionLimitError",
    "DEFAULT_MAX_REGIONS",
    "Plane",
    "Line",
    "nonlinear_locus",
    "linear_regions",
    "Locus",
    "LinearRegions",
    "lc_density",
    "local_complexity",
    "Estimate",
    "vertex_density",
    "locus_vertices",
    "Bound",
    "gradient_bound",
    "corollary7_bound",
    "corollary8_bound",
    "local_rank",
    "total_variation",
    "not_good_count",
    "bounds",
    "Tracker",
    "History",
    "decision_boundary",
    "plot_regions",
    "plot_density",
    "plot_density_1d",
    "plot_function_1d",
    "figure1",
    "grid_points",
    "sawtooth",
    "closed_form",
    "examples",
    "datasets",
    "images",
    "default_network",
]
