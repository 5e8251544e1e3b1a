"""Exact local complexity for small networks, worked out by hand.

Paper convention throughout: a neuron with weight ``w`` has its breakpoint
where ``w . x = b``, with ``b ~ N(beta, sigma**2)`` (``sigma`` a standard
deviation) and ``rho_b`` that Gaussian density. The local complexity density
is eq. (3) of [1]_, ``f(x) = lim_{eps->0} E[vol(locus & B_eps(x))] / Z_eps``,
with ``Z_eps = 2 eps`` in 1D and ``pi eps**2`` in 2D. The locus is where the
gradient of the network's output jumps. Everything is pure numpy and
``scipy.special``: Gaussian integrals are done by hand with ``ndtr``
(the normal cdf) and Owen's T; the one exception is the finite-eps chord
expectation, which has no elementary form and uses a fixed Gauss-Legendre rule
(see :func:`one_layer_2d_density_eps`).

References
----------
.. [1] N. Patel and G. Montúfar, "On the Local Complexity of Linear Regions in
   Deep ReLU Networks", Appendix A.2 (a single neuron, and the chain
   ``N(x) = relu(w2 relu(w1 x - beta1) - beta2)``).

Typos in the paper's Appendix A.2, found while re-deriving: ``|z_1'(x)| = |w|``
should be ``|w_1|``; ``N'(x)`` uses ``beta_1, beta_2`` where the noisy ``b_1,
b_2`` are meant; the first term's ``1{z_2(x) > b_2}`` must be read at neuron 1's
breakpoint, where ``z_2 = w_2 relu(0) = 0``, i.e. it is ``1{b_2 < 0}``;
``P(b in (wx - w eps, wx + w eps))`` is right only for ``w > 0`` (the final
``|w|`` is right); Section 3 writes the noise ``N(0, sigma I)`` but calls
``sigma`` a standard deviation, which is what we use.
"""

from .one_layer import (
    one_layer_2d_density,
    one_layer_2d_density_eps,
    one_layer_vertex_density,
    single_neuron_density_nd,
)
from .one_neuron import (
    single_neuron_density,
    single_neuron_expected_count,
    single_neuron_lc_uniform,
    two_layer_chain_density,
    two_layer_chain_expected_count,
    two_layer_chain_lc_uniform,
)

__all__ = [
    "single_neuron_density",
    "single_neuron_density_nd",
    "single_neuron_expected_count",
    "single_neuron_lc_uniform",
    "two_layer_chain_density",
    "two_layer_chain_expected_count",
    "two_layer_chain_lc_uniform",
    "one_layer_2d_density",
    "one_layer_2d_density_eps",
    "one_layer_vertex_density",
]
