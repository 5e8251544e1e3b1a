"""Theorem 2 (eq. 6) with torch on any device: ``lc_density(..., device=...)``.

The same formula as the numba kernels (:mod:`regiongeom._theorem2_kernels`),
batched over (sample, point) pairs in float64, for GPUs:

- forward pass of a batch of pairs, layer by layer (``v``, pieces, ``h``);
- gradient norms as the row norms of ``J_l = W_l S_{l-1} J_{l-1}`` with
  ``J_0 = F``, the factor of ``W_0 W_0^T`` of :func:`~regiongeom._theorem2.first_factor`
  (``min(n_in, rows_0)`` columns);
- the exact good indicator of every term (no screen): each neuron put on each
  breakpoint, the change propagated through every later layer at once as a
  batch of ``(terms, units)`` matrices, pieces recomputed as
  :func:`~regiongeom._theorem2_kernels._fallback` does, then a path to the
  output through nonzero weights and open units (for dense weights: an open
  unit in every later activated layer).

Pieces at the noisy values are decided in float64 as on the CPU; a unit within
rounding of a breakpoint (an event of probability zero under the noise) may
get the other piece, as sums come in a different order. torch is imported
only here, only when ``device=`` is given.
"""

from __future__ import annotations

import math

import numpy as np

from ._theorem2 import first_factor

# bytes of one (pairs, terms, units) float64 array per batch; about a dozen such
# arrays are alive at the peak
BATCH_BYTES = 64 * 2**20


def torch_device(device):
    """``torch.device(device)`` after checking that torch is installed and the
    device holds float64 tensors (Apple's MPS has no float64); a one-line
    ValueError otherwise."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "device= runs the estimator with torch, which is not installed: pip install 'regiongeom[torch]'"
        ) from None
    try:
        dev = torch.device(device)
        torch.zeros(1, dtype=torch.float64, device=dev)
    except (RuntimeError, TypeError, ValueError, AssertionError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = msg if len(msg) <= 120 else msg[:117] + "..."
        raise ValueError(f"device {device!r} is not usable by torch in float64 ({msg})") from None
    return dev


def theorem2_torch(net, x, noise, opts, device):
    """(S, P) eq. (6) per noise sample, or (S, P, L) with ``opts["by_layer"]``,
    computed with torch on ``device``; float64 numpy out."""
    import torch

    dev = torch_device(device)
    S, P, L = noise.shape[0], x.shape[0], net.n_layers
    by_layer = bool(opts.get("by_layer"))
    out = np.zeros((S * P, L) if by_layer else (S * P,))
    if net.n_neurons == 0:
        return out.reshape((S, P, L) if by_layer else (S, P))
    T = _Tensors(net, dev, torch)
    widest = max(int(w.shape[0]) for w in net.weights)
    terms = max(int(w.shape[0]) * T.nbp[ly] for ly, w in enumerate(net.weights))
    per_pair = 8 * widest * max(T.F.shape[1], terms, 1) * (2 if opts["good"] else 1)
    B = int(max(1, min(S * P, BATCH_BYTES // per_pair)))
    xt = torch.tensor(np.asarray(x, np.float64), device=dev)
    nt = torch.tensor(np.asarray(noise, np.float64), device=dev)
    for n0 in range(0, S * P, B):
        idx = torch.arange(n0, min(S * P, n0 + B), device=dev)
        f = _batch(T, xt[idx % P], nt[idx // P], opts, torch)
        out[n0 : n0 + idx.numel()] = f.cpu().numpy() if by_layer else f.sum(dim=1).cpu().numpy()
    return out.reshape((S, P, L) if by_layer else (S, P))


class _Tensors:
    """The network on the device: weights, biases, activations, the first factor."""

    def __init__(self, net, dev, torch):
        def t(a):
            return torch.tensor(np.asarray(a, np.float64), device=dev)

        self.L = net.n_layers
        self.W = [t(w) for w in net.weights]
        self.nz = [t(w != 0) for w in net.weights]  # nonzero weights, as 0/1
        self.b = [t(b) for b in net.biases]
        self.acts = net.activations
        self.noff = net.neuron_offsets
        self.nbp = [0 if a is None else a.breakpoints.size for a in net.activations]
        self.bps = [None if a is None else t(a.breakpoints) for a in net.activations]
        self.slopes = [None if a is None else t(a.slopes) for a in net.activations]
        self.icpts = [None if a is None else t(a.intercepts) for a in net.activations]
        self.at_bp = [None if a is None else t(a.slopes[:-1] * a.breakpoints + a.intercepts[:-1])
                      for a in net.activations]  # fmt: skip
        F, norms = first_factor(net.weights[0])
        self.F, self.first_norm = t(F), t(norms)
        self.dense = all(bool(np.all(w != 0)) for w in net.weights[1:])
        has = [a is not None for a in net.activations]
        self.last_act = max((i for i, h in enumerate(has) if h), default=-1)

    def piece(self, ly, v, torch):
        """(piece index, slope, output) of layer ``ly``'s activation at ``v``."""
        if self.nbp[ly] == 1:  # one breakpoint (ReLU): no (..., K) comparison
            k = (v >= self.bps[ly][0]).long()
        else:
            k = (v[..., None] >= self.bps[ly]).sum(dim=-1)
        s = self.slopes[ly][k]
        return k, s, s * v + self.icpts[ly][k]


def _batch(T, x, noise, opts, torch):
    """(B, L) each layer's share of eq. (6) for a batch of pairs."""
    B = x.shape[0]
    sigma = float(opts["sigma"])
    phi0, inv2var = 1.0 / (math.sqrt(2.0 * math.pi) * sigma), 0.5 / (sigma * sigma)
    z, v, k, s, h = [], [], [], [], []
    a = x
    for ly in range(T.L):
        zl = a @ T.W[ly].T
        z.append(zl)
        if T.acts[ly] is None:
            vl = kl = sl = None
            a = zl + T.b[ly]
        else:
            vl = zl + T.b[ly] + noise[:, T.noff[ly] : T.noff[ly + 1]]
            kl, sl, a = T.piece(ly, vl, torch)
        v.append(vl)
        k.append(kl)
        s.append(sl)
        h.append(a)
    out = torch.zeros((B, T.L), dtype=torch.float64, device=x.device)
    J = None
    for ly in range(T.last_act + 1):
        if ly == 0:
            norms = T.first_norm.expand(B, -1)
        else:
            prev = T.F if J is None else J
            scale = s[ly - 1] if s[ly - 1] is not None else torch.ones_like(z[ly - 1])
            J = torch.matmul(T.W[ly], scale[:, :, None] * prev)
            norms = torch.sqrt((J * J).sum(dim=-1))
        if T.acts[ly] is None:
            continue
        # term weights (B, m, K): ||grad z_i|| phi_sigma(t_k - b_i - z_i)
        w = norms[:, :, None].expand(-1, -1, T.nbp[ly])
        if opts["rho"]:
            u = T.bps[ly][None, None, :] - T.b[ly][None, :, None] - z[ly][:, :, None]
            w = w * phi0 * torch.exp(-(u * u * inv2var))  # as the kernels: |grad| phi0 exp(-e)
        if opts["good"]:
            w = w * _good(T, ly, v, k, h, torch)
        out[:, ly] = w.sum(dim=(1, 2))
    return out


def _good(T, ly, v, k, h, torch):
    """(B, m, K) exact good indicator of every term of layer ``ly``, as 0/1."""
    B, m, K = h[ly].shape[0], h[ly].shape[1], T.nbp[ly]
    good = torch.ones((B, m * K), dtype=torch.float64, device=h[ly].device)
    if ly == T.L - 1 or (ly >= T.last_act and T.dense):
        return good.reshape(B, m, K)
    delta = (T.at_bp[ly][None, None, :] - h[ly][:, :, None]).reshape(B, m * K)  # term (j, k) at j * K + k
    j_of = torch.arange(m * K, device=delta.device) // K
    dh, opened = None, []
    # dense: good iff every later activated layer keeps an open unit (the layers after them pass)
    for mm in range(ly + 1, T.last_act + 1 if T.dense else T.L):
        if dh is None:  # one changed unit per term: (B, terms, rows of layer ly + 1)
            dv = T.W[ly + 1].T[j_of][None, :, :] * delta[:, :, None]
        else:
            dv = dh @ T.W[mm].T
        if T.acts[mm] is None or mm > T.last_act:
            dh = dv
            opened.append(None)
            continue
        vv = v[mm][:, None, :] + dv
        km, sm, hm = T.piece(mm, vv, torch)
        dh = torch.where(km == k[mm][:, None, :], sm * dv, hm - h[mm][:, None, :])
        opened.append(sm != 0)
    if T.dense:
        for o in opened:
            if o is not None:
                good = good * o.any(dim=-1)
        return good.reshape(B, m, K)
    reach = None  # units of layer mm that reach the output, (B, terms, rows)
    for i, mm in reversed(list(enumerate(range(ly + 1, T.L)))):
        o = opened[i]
        r = torch.ones_like(delta)[..., None].expand(-1, -1, T.W[mm].shape[0]) if o is None else o.double()
        reach = r if reach is None else r * ((reach @ T.nz[mm + 1]) > 0)
    good = (reach * T.nz[ly + 1].T[j_of][None, :, :]).sum(dim=-1) > 0
    return good.double().reshape(B, m, K)
