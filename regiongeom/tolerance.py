"""The tolerance policy: every geometric decision in regiongeom uses these.

regiongeom computes in float64. Exact arithmetic would decide every sign
exactly; float64 decides it up to rounding, so each decision that could be
spoiled by rounding is made against a *relative* threshold, always the same:

``REL_TOL`` (1e-10)
    A vertex lies *on* a neuron's breakpoint hyperplane ``z_j(x) = t`` when
    ``|z_j(v) - t| <= REL_TOL * scale_j``, where ``scale_j`` is the largest
    ``|z_j - t|`` over the vertices of the current subdivision (the size of
    the neuron's values over the domain). It is relative, so multiplying a
    layer's weights and biases by any positive factor (1e-6 ... 1e6) changes
    no decision. Such vertices are snapped onto the hyperplane: a neuron
    whose hyperplane passes through existing vertices (duplicated neurons,
    lines through corners or through earlier intersections) reuses them
    instead of creating a sliver. A face whose vertices are all on one side
    or on the hyperplane is not split, so no region of zero measure is made;
    a region of positive measure is lost only if all of its vertices lie
    within ``REL_TOL * scale_j`` of one hyperplane, i.e. if it is thinner
    than about 1e-10 of the domain in that neuron's direction.

``JAC_RTOL`` (1e-9)
    Two neighbouring regions have the *same* gradient (the edge between them
    is not in the nonlinear locus) when their Jacobians differ by at most
    ``JAC_RTOL * scale`` in every entry, ``scale`` being the largest Jacobian
    entry over the whole region map. Jacobians are exact products of the
    weight matrices restricted by the patterns, so they differ either by
    rounding (about 1e-16 relative) or by a real jump; a neuron that is not
    "good" (every later layer off) leaves both sides' Jacobians bit-for-bit
    equal.

``GEOM_RTOL`` (1e-12)
    Coordinates closer than ``GEOM_RTOL * diameter(domain)`` are the same
    point (used when matching domain edges and when reading domains).
"""

REL_TOL = 1e-10
JAC_RTOL = 1e-9
GEOM_RTOL = 1e-12

__all__ = ["REL_TOL", "JAC_RTOL", "GEOM_RTOL"]
