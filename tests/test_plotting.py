"""Plotting: artists returned, one colour per region, the locus drawn exactly,
1D and 2D, Estimates and arrays, and matplotlib never imported by ``import regiongeom``."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402

import regiongeom as rg  # noqa: E402
from regiongeom.complexity import Estimate, lc_density  # noqa: E402
from regiongeom.examples import random_network  # noqa: E402
from regiongeom.grids import grid_points  # noqa: E402
from regiongeom.plotting import (  # noqa: E402
    figure1,
    plot_density,
    plot_density_1d,
    plot_function_1d,
    plot_regions,
    region_colors,
)

BOX = (-1.0, -1.0, 1.0, 1.0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def gated_2d():
    """Layer 2 is off for x1 + x2 < 1, so there the first layer's lines are
    activation boundaries but not locus (no neuron of layer 1 is good)."""
    return rg.Network.from_arrays(
        [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[1.0, 1.0, 0.0]], [[1.0]]],
        [[0.0, 0.0, -0.5], [-1.0], [0.0]],
        ["relu", "relu", None],
    )


def gated_1d():
    """Breakpoints 0 (not locus: layer 2 is off there), 0.5 and 1 (locus)."""
    return rg.Network.from_arrays(
        [[[1.0], [1.0]], [[1.0, -1.0]], [[1.0]]], [[0.0, -1.0], [-0.5], [0.0]], ["relu", "relu", None]
    )


def unique_rows(a):
    return len(np.unique(np.round(np.asarray(a), 12), axis=0))


# ---------------------------------------------------------------------- import
def test_import_regiongeom_does_not_import_matplotlib():
    code = (
        "import sys, regiongeom, regiongeom.plotting; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'matplotlib']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------- regions
@pytest.mark.parametrize("seed", [0, 1])
def test_plot_regions_2d_activation(seed):
    net = random_network([8, 8], rng=seed)
    rm = rg.activation_regions(net, BOX)
    loc = rg.nonlinear_locus(rm)
    fig, ax = plt.subplots()
    art = plot_regions(rm, ax=ax, rng=seed)
    assert art.ax is ax
    assert isinstance(art.regions, PolyCollection)
    assert len(art.regions.get_paths()) == len(rm)
    assert unique_rows(art.regions.get_facecolors()) == len(rm)
    assert isinstance(art.locus, LineCollection)
    assert len(art.locus.get_segments()) == len(loc)
    assert art.boundaries is None
    assert ax.get_xlim() == (-1.0, 1.0) and ax.get_ylim() == (-1.0, 1.0)
    assert ax.get_aspect() == 1.0


def test_plot_regions_2d_linear_and_boundaries():
    rm = rg.activation_regions(gated_2d(), BOX)
    loc = rg.nonlinear_locus(rm)
    lr = rg.linear_regions(rm)
    assert len(lr) < len(rm) and (~loc.in_locus).any()
    art = plot_regions(rm, color_by="linear", boundaries=True)
    face = np.round(art.regions.get_facecolors(), 12)
    assert face.shape[0] == len(rm)
    assert unique_rows(face) == len(lr)
    # same linear region <=> same colour
    same_label = lr.labels[:, None] == lr.labels[None, :]
    same_color = np.all(face[:, None, :] == face[None, :, :], axis=2)
    np.testing.assert_array_equal(same_label, same_color)
    assert len(art.locus.get_segments()) == len(loc)
    assert len(art.boundaries.get_segments()) == int((~loc.in_locus).sum())


def test_plot_regions_options():
    rm = rg.activation_regions(random_network([6], rng=2), BOX)
    art = plot_regions(rm, locus=False, cmap="tab20", alpha=0.5)
    assert art.locus is None and art.boundaries is None
    assert np.allclose(art.regions.get_facecolors()[:, 3], 0.5)
    with pytest.raises(ValueError, match="color_by"):
        plot_regions(rm, color_by="nope")
    with pytest.raises(TypeError, match="RegionMap"):
        plot_regions(random_network([6], rng=2))


def test_plot_regions_colours_are_seeded():
    rm = rg.activation_regions(random_network([6], rng=2), BOX)
    a = plot_regions(rm, rng=3).regions.get_facecolors()
    b = plot_regions(rm, rng=3).regions.get_facecolors()
    c = plot_regions(rm, rng=4).regions.get_facecolors()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_ax_is_keyword_only_and_defaults_to_the_current_axes():
    rm = rg.activation_regions(random_network([4], rng=0), BOX)
    fig, ax = plt.subplots()
    _, other = plt.subplots()
    assert plot_regions(rm, other).ax is other  # the contract's plot_regions(rm, ax=None)
    plt.sca(ax)
    with pytest.raises(TypeError):
        plot_density(np.ones(4), BOX, ax)
    assert plot_regions(rm).ax is ax  # plt.gca()
    assert plot_density(np.ones(4), BOX, colorbar=False).ax is ax


def test_region_colors():
    c = region_colors(50, rng=0)
    np.testing.assert_array_equal(region_colors(5, rng=np.random.default_rng(1)), region_colors(5, rng=1))
    assert c.shape == (50, 4) and np.all((c >= 0) & (c <= 1))
    assert region_colors(5, cmap="viridis").shape == (5, 4)


def test_plot_regions_1d_sawtooth():
    rm = rg.activation_regions(rg.sawtooth(3), (0.0, 1.0))
    art = plot_regions(rm)
    assert isinstance(art.regions, LineCollection)
    assert len(art.regions.get_segments()) == len(rm) == 8
    assert len(art.locus.get_xdata()) == len(rg.nonlinear_locus(rm)) == 7
    # the drawn graph is the network: segment ends lie on N(x)
    segs = np.asarray(art.regions.get_segments())
    x, y = segs[:, :, 0].ravel(), segs[:, :, 1].ravel()
    np.testing.assert_allclose(y, rg.sawtooth(3)(x)[:, 0], atol=1e-12)
    assert art.ax.get_xlim() == (0.0, 1.0)


def test_plot_function_1d_marks_non_locus_boundaries():
    art = plot_function_1d(gated_1d(), (-1.0, 2.0))
    np.testing.assert_allclose(art.locus.get_xdata(), [0.5, 1.0])
    np.testing.assert_allclose(art.boundaries.get_xdata(), [0.0])
    np.testing.assert_allclose(art.locus.get_ydata(), [0.0, 0.5])
    with pytest.raises(ValueError, match="1-input"):
        plot_function_1d(random_network([4], rng=0), BOX)


# --------------------------------------------------------------------- density
def test_grid_points_order_matches_image():
    pts = grid_points(BOX, (3, 4))
    assert pts.shape == (12, 2)
    img = pts[:, 0].reshape(3, 4)
    assert np.all(np.diff(img, axis=1) > 0)  # x grows along columns
    assert np.all(np.diff(pts[:, 1].reshape(3, 4), axis=0) > 0)  # y grows along rows
    np.testing.assert_allclose(grid_points((0.0, 2.0), 4)[:, 0], [0.25, 0.75, 1.25, 1.75])


def test_plot_density_array_2d():
    pts = grid_points(BOX, 20)
    vals = pts[:, 0] + 2 * pts[:, 1]
    fig, ax = plt.subplots()
    art = plot_density(vals, BOX, ax=ax)
    img = np.asarray(art.artist.get_array())
    assert img.shape == (20, 20)
    np.testing.assert_allclose(img, vals.reshape(20, 20))
    assert tuple(art.artist.get_extent()) == (-1.0, 1.0, -1.0, 1.0)
    assert art.artist.origin == "lower"
    assert art.colorbar is not None and art.band is None
    # an image directly, no colour bar, log scale
    art = plot_density(np.exp(vals.reshape(20, 20)), BOX, colorbar=False, log=True)
    assert art.colorbar is None
    with pytest.raises(ValueError, match="square"):
        plot_density(np.ones(10), BOX)
    art = plot_density(np.ones(12), BOX, shape=(3, 4))
    assert np.asarray(art.artist.get_array()).shape == (3, 4)


def test_plot_density_estimate_2d():
    net = random_network([5], rng=0)
    est = lc_density(net, grid_points(BOX, 12), sigma=0.2, n_samples=4, rng=0, progress=False)
    art = plot_density(est, BOX)
    np.testing.assert_allclose(np.asarray(art.artist.get_array()), est.mean.reshape(12, 12))


def test_plot_density_1d_estimate_and_array():
    x = np.linspace(-1, 1, 30)
    est = Estimate(np.sin(x) ** 2, np.full(30, 0.1), 10)
    art = plot_density(est, x=x)
    np.testing.assert_allclose(art.artist.get_ydata(), est.mean)
    assert art.band is not None and art.colorbar is None
    art = plot_density(np.cos(x) ** 2, (-1.0, 1.0))
    assert art.band is None
    np.testing.assert_allclose(art.artist.get_xdata(), grid_points((-1.0, 1.0), 30)[:, 0])
    with pytest.raises(ValueError, match="abscissae"):
        plot_density(np.ones(5))


def test_plot_density_1d_compare():
    x = np.linspace(-2, 2, 41)
    ests = {
        "theorem2": Estimate(np.exp(-(x**2)), np.full(41, 0.01), 8),
        "definition": Estimate(np.exp(-(x**2)) + 0.01, np.full(41, 0.02), 8),
    }
    art = plot_density_1d(x, ests, closed_form=lambda t: np.exp(-(t**2)))
    assert set(art.lines) == set(ests) == set(art.bands)
    np.testing.assert_allclose(art.closed_form.get_ydata(), np.exp(-(x**2)))
    art = plot_density_1d(x, {"plain": np.ones(41)})
    assert art.bands == {} and art.closed_form is None
    with pytest.raises(ValueError, match="values"):
        plot_density_1d(x, {"bad": np.ones(3)})


# --------------------------------------------------------------------- figure1
def test_figure1_2d():
    net = random_network([6, 6], rng=0)
    fig, axes = figure1(net, BOX, sigma=0.1, n_samples=4, shape=16, progress=False)
    assert axes.shape == (2,)
    assert len(axes[0].collections) == 2  # regions + locus
    assert np.asarray(axes[1].images[0].get_array()).shape == (16, 16)
    assert "Theorem 2" in axes[1].get_title()  # the default, as lc_density's
    fig, axes = figure1(net, BOX, sigma=0.1, n_samples=4, shape=(8, 10), good=False, progress=False)
    assert np.asarray(axes[1].images[0].get_array()).shape == (8, 10)
    assert "eq. 40 upper bound" in axes[1].get_title() and "Theorem 2" not in axes[1].get_title()


def test_figure1_draws_a_given_estimate():
    net = random_network([6, 6], rng=0)
    est = lc_density(net, grid_points(BOX, (6, 7)), sigma=0.1, n_samples=4, good=False, rng=0, progress=False)
    rm = rg.activation_regions(net, BOX)
    fig, axes = figure1(net, BOX, shape=(6, 7), estimate=est, regions=rm)
    np.testing.assert_array_equal(np.asarray(axes[1].images[0].get_array()), est.mean.reshape(6, 7))
    assert "eq. 40 upper bound" in axes[1].get_title()  # named by the estimate itself
    # the default equals lc_density's default on the same grid and seed
    fig, axes = figure1(net, BOX, sigma=0.1, n_samples=4, shape=(6, 7), rng=0, progress=False)
    thm = lc_density(net, grid_points(BOX, (6, 7)), sigma=0.1, n_samples=4, rng=0, progress=False)
    np.testing.assert_array_equal(np.asarray(axes[1].images[0].get_array()), thm.mean.reshape(6, 7))
    with pytest.raises(ValueError, match="pass the shape"):
        figure1(net, BOX, shape=8, estimate=est)
    with pytest.raises(ValueError, match="sigma"):
        figure1(net, BOX, sigma=0.2, shape=(6, 7), estimate=est)
    with pytest.raises(ValueError, match="needs sigma"):
        figure1(net, BOX, shape=8)
    with pytest.raises(ValueError, match="same network and domain"):
        figure1(net, (-1.0, -1.0, 1.0, 2.0), sigma=0.1, shape=8, regions=rm)


def test_figure1_1d_definition():
    fig, axes = figure1(gated_1d(), (-1.0, 2.0), sigma=0.1, n_samples=4, shape=50, method="definition",
                        eps=0.05, progress=False)  # fmt: skip
    assert len(axes[1].lines) == 1 and len(axes[1].lines[0].get_xdata()) == 50
    assert "definition" in axes[1].get_title()


def test_plot_density_blanks_pixels_outside_a_polygon_domain():
    from shapely.geometry import Polygon

    tri = Polygon([(-1, -1), (1, -1), (0, 1)])
    art = plot_density(np.ones(400), tri)
    img = np.ma.filled(np.asarray(art.artist.get_array(), dtype=float), np.nan)
    pts = grid_points(tri, 20)
    inside = np.array([tri.contains(Polygon.from_bounds(*p, *p).centroid) for p in pts]).reshape(20, 20)
    assert np.all(np.isfinite(img[inside])) and np.all(np.isnan(img[~inside]))


def test_plot_regions_polygon_domains():
    from shapely.geometry import Polygon

    net = random_network([6, 6], rng=1)
    tri = Polygon([(-1, -1), (1, -1), (0, 1)])
    rm = rg.activation_regions(net, tri)
    art = plot_regions(rm)
    assert len(art.regions.get_paths()) == len(rm)
    assert art.ax.get_xlim() == (-1.0, 1.0)
    ell = Polygon([(-1, -1), (1, -1), (1, 0), (0, 0), (0, 1), (-1, 1)])
    rm = rg.activation_regions(net, ell)
    assert rm.measures.sum() == pytest.approx(3.0, rel=1e-12)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_position((0, 0, 1, 1))
    ax.set_axis_off()
    art = plot_regions(rm, ax=ax)
    paths = art.regions.get_paths()
    assert len(paths) == len(rm)
    # each drawn path encloses exactly its region (signed ring areas: holes count negative)
    for path, area in zip(paths, rm.measures):
        drawn = sum(_signed_area(ring) for ring in path.to_polygons(closed_only=True))
        assert drawn == pytest.approx(area, rel=1e-9)
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())
    h, w = img.shape[:2]
    assert np.all(img[h // 4, 3 * w // 4, :3] == 255)  # the notch (0.5, 0.5): background
    assert not np.all(img[3 * h // 4, 3 * w // 4, :3] == 255)  # (0.5, -0.5): filled


def _signed_area(ring):
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def test_plot_regions_leaves_holes_empty():
    from shapely.geometry import Polygon

    net = rg.Network.from_arrays([[[1.0, 0.0]], [[1.0]]], [[5.0], [0.0]], ["relu", None])  # no kink inside
    dom = Polygon(
        [(-1, -1), (1, -1), (1, 1), (-1, 1)], [[(-0.3, -0.3), (0.3, -0.3), (0.3, 0.3), (-0.3, 0.3)]]
    )
    rm = rg.activation_regions(net, dom)
    assert len(rm) == 1
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_position((0, 0, 1, 1))
    ax.set_axis_off()
    plot_regions(rm, ax=ax)
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())
    h, w = img.shape[:2]
    assert np.all(img[h // 2, w // 2, :3] == 255)  # the hole: background
    assert not np.all(img[h // 10, w // 10, :3] == 255)  # the region: filled


# ------------------------------------------------------- points, decision boundary
def test_plot_regions_points_and_decision_boundary():
    net = random_network([8, 8], n_out=3, rng=1, scale=2.0)
    net = net.with_biases([*net.biases[:-1], [0.03, -0.02, 0.01]])
    rm = rg.activation_regions(net, BOX)
    pts = np.array([[0.0, 0.0], [0.5, -0.5], [-0.5, 0.5], [0.2, 0.2]])
    art = plot_regions(rm, points=pts, point_labels=[3, 1, 3, 7], decision_boundary=True)
    regions, locus, boundaries, ax, points, decision = art  # the two new fields come last
    assert isinstance(decision, LineCollection)
    np.testing.assert_array_equal(np.asarray(decision.get_segments()), rg.decision_boundary(rm))
    assert sorted(points) == [1, 3, 7]
    np.testing.assert_array_equal(points[3].get_offsets(), pts[[0, 2]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1", "3", "7"]
    art = plot_regions(rm, plt.figure().gca(), points=pts)
    np.testing.assert_array_equal(art.points.get_offsets(), pts)
    assert art.decision is None and art.ax.get_legend() is None
    assert plot_regions(rm).points is None
    # ten classes (digits): ten distinct colours
    many = plot_regions(rm, plt.figure().gca(), points=np.zeros((10, 2)), point_labels=np.arange(10)).points
    assert unique_rows([m.get_facecolor()[0] for m in many.values()]) == 10


def test_plot_regions_points_refusals():
    rm = rg.activation_regions(random_network([4], n_out=2, rng=0), BOX)
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        plot_regions(rm, points=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="one per point"):
        plot_regions(rm, points=np.zeros((3, 2)), point_labels=[0, 1])
    with pytest.raises(ValueError, match="one per point"):
        plot_regions(rm, points=np.zeros((2, 2)), point_labels=[0.5, 1.0])
    rm1 = rg.activation_regions(random_network([4], n_in=1, n_out=2, rng=0), (0.0, 1.0))
    with pytest.raises(ValueError, match="2D region map"):
        plot_regions(rm1, decision_boundary=True)
    with pytest.raises(ValueError, match="at least 2 outputs"):
        plot_regions(rg.activation_regions(random_network([4], rng=0), BOX), decision_boundary=True)


def test_figure1_marks_points_on_both_panels_and_the_decision_boundary():
    net = random_network([8, 8], n_in=2, n_out=3, rng=2)
    pts = np.array([[0.1, 0.2], [-0.5, 0.3], [0.4, -0.6]])
    est = lc_density(net, grid_points((-1, -1, 1, 1), 16), sigma=0.1, n_samples=2, rng=0)
    fig, axes = rg.figure1(net, (-1, -1, 1, 1), shape=16, estimate=est, points=pts, point_labels=[0, 1, 1],
                           decision_boundary=True)  # fmt: skip
    from matplotlib.collections import PathCollection

    for ax in axes:
        marks = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert sorted(c.get_label() for c in marks) == ["0", "1"]
        np.testing.assert_array_equal(np.concatenate([c.get_offsets() for c in marks]), pts[[0, 1, 2]])
    red = [c for c in axes[0].collections if isinstance(c, LineCollection) and c.get_linewidth()[0] == 2.0]
    assert len(red) == 1 and len(red[0].get_segments()) == len(rg.decision_boundary(rg.activation_regions(
        net, (-1, -1, 1, 1))))  # fmt: skip
    with pytest.raises(ValueError, match="2-input network"):
        rg.figure1(rg.sawtooth(2), (0.0, 1.0), sigma=0.1, n_samples=2, shape=8, points=pts)
    plt.close("all")


def test_tie_color_draws_the_max_units_locus_in_its_own_colour():
    """A ReLU layer, then a maxout layer: the locus segments of the max units
    (where a winner changes) take tie_color, the ReLU ones locus_color."""
    from matplotlib.colors import to_rgba

    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)

    class Maxout(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(2, 6), nn.Linear(6, 8), nn.Linear(4, 1)

        def forward(self, x):
            return self.c(self.b(torch.relu(self.a(x))).view(-1, 4, 2).amax(-1))

    net = rg.from_torch(Maxout().double())
    rm = rg.activation_regions(net, (-2, -2, 2, 2))
    loc = rg.nonlinear_locus(rm)
    ties = rg.plotting.max_unit_neurons(net)[loc.neurons]
    assert 0 < ties.sum() < len(ties)  # both kinds of locus are there
    art = plot_regions(rm, locus_color="k", tie_color="tab:orange")
    colors = art.locus.get_colors()
    assert np.allclose(colors[ties], to_rgba("tab:orange")) and np.allclose(colors[~ties], to_rgba("k"))
    assert not rg.plotting.max_unit_neurons(rg.sawtooth(2)).any()
    plt.close("all")
