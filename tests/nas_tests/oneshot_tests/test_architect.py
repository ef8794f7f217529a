"""The architecture step (nas.oneshot.architect): DARTS' second-order gradient with the finite-difference
Hessian-vector product against two independent references on a tiny float64 supernet -- the exact
hypergradient by double backpropagation, and central finite differences of the unrolled validation loss --
plus the first-order step and the exact restoration of the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from nas.oneshot.architect import Architect, unrolled_alpha_grad
from nas.oneshot.supernet import build_supernet
from search_spaces import get_space

XI, WD = 0.05, 3e-4


def smooth(module: torch.nn.Module) -> None:
    """Replace every ReLU by a softplus: a smooth network, on which finite differences converge as O(r^2)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.Softplus(beta=4.0))
        else:
            smooth(child)


@pytest.fixture
def case():
    return make_case(smoothed=False)


def make_case(smoothed: bool):
    torch.manual_seed(0)
    net = build_supernet(get_space("nb201", C=2, N=1), (1, 6, 6), 3, seed=0).double()
    if smoothed:
        smooth(net)
    with torch.no_grad():
        net.alphas["cell"].normal_(0.0, 0.5)  # away from uniform, so every term matters
    gen = torch.Generator().manual_seed(1)
    train = (torch.randn(6, 1, 6, 6, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2]))
    val = (torch.randn(6, 1, 6, 6, generator=gen, dtype=torch.float64), torch.tensor([2, 1, 0, 2, 1, 0]))
    return net, train, val


def unrolled_val_loss(net, train, val, alpha: torch.Tensor, create_graph: bool, moments=None) -> torch.Tensor:
    """L_val(w - xi * (m + grad_w L_train(w, alpha) + wd * w), alpha), differentiable in alpha."""
    names = [n for n, _ in net.named_parameters() if not n.startswith("alphas.")]
    params = dict(net.named_parameters())
    weights = {n: params[n] for n in names}
    state = {**weights, "alphas.cell": alpha}
    loss_t = F.cross_entropy(functional_call(net, state, (train[0],)), train[1])
    grads = torch.autograd.grad(loss_t, list(weights.values()), create_graph=create_graph, allow_unused=True)
    moments = moments or [torch.zeros_like(w) for w in weights.values()]
    unrolled = {n: w - XI * (m + (g if g is not None else torch.zeros_like(w)) + WD * w)
                for (n, w), g, m in zip(weights.items(), grads, moments)}
    return F.cross_entropy(functional_call(net, {**unrolled, "alphas.cell": alpha}, (val[0],)), val[1])


def test_second_order_gradient_matches_exact_hypergradient_and_finite_differences(case):
    net, train, val = case
    before = [p.detach().clone() for p in net.weight_parameters()]
    # r is the finite-difference step (eps = r / ||v||). DARTS' default 0.01 suits float32 training; in float64
    # a small step makes the approximation converge to the exact product, which is what this test checks
    # (at larger steps ReLU kinks of this tiny network enter the difference).
    (approx,), _, _ = unrolled_alpha_grad(net, net.weight_parameters(), net.arch_parameters(), train, val,
                                          xi=XI, weight_decay=WD, r=1e-6)
    # the weights come back exactly
    assert all(torch.equal(b, p) for b, p in zip(before, net.weight_parameters()))
    # reference 1: exact, by differentiating through the unrolled step
    alpha = net.alphas["cell"].detach().clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(unrolled_val_loss(net, train, val, alpha, create_graph=True), [alpha])
    # reference 2: central finite differences of the unrolled validation loss in alpha
    numeric = torch.zeros_like(alpha)
    h = 1e-5
    for idx in np.ndindex(*alpha.shape):
        plus, minus = alpha.detach().clone(), alpha.detach().clone()
        plus[idx] += h
        minus[idx] -= h
        f_plus = unrolled_val_loss(net, train, val, plus.requires_grad_(False), create_graph=False)
        f_minus = unrolled_val_loss(net, train, val, minus.requires_grad_(False), create_graph=False)
        numeric[idx] = (f_plus - f_minus) / (2 * h)
    scale = exact.abs().max()
    assert torch.allclose(exact, numeric, atol=1e-6 * scale.item() + 1e-9, rtol=1e-5)
    assert torch.allclose(approx, exact, atol=1e-6 * scale.item(), rtol=1e-5)
    # and the second-order term is not negligible here: first order alone is measurably different
    first = torch.autograd.grad(F.cross_entropy(net(val[0]), val[1]), [net.alphas["cell"]])[0]
    assert (first - exact).abs().max() > 1000 * (approx - exact).abs().max()


def test_finite_difference_hvp_converges_quadratically_on_a_smooth_network():
    net, train, val = make_case(smoothed=True)
    alpha = net.alphas["cell"].detach().clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(unrolled_val_loss(net, train, val, alpha, create_graph=True), [alpha])
    errors = []
    for r in (1e-2, 1e-3):
        (approx,), _, _ = unrolled_alpha_grad(net, net.weight_parameters(), net.arch_parameters(), train, val,
                                              xi=XI, weight_decay=WD, r=r)
        errors.append(float((approx - exact).abs().max()))
    scale = float(exact.abs().max())
    assert errors[0] < 0.01 * scale  # DARTS' default step: within 1% of the largest component
    assert 50 < errors[0] / errors[1] < 200  # a tenth of the step, a hundredth of the error


def test_the_unrolled_step_carries_the_weight_optimisers_momentum(case):
    net, train, val = case
    opt = torch.optim.SGD(net.weight_parameters(), lr=XI, momentum=0.9)
    torch.nn.functional.cross_entropy(net(train[0]), train[1]).backward()
    opt.step()  # fills the momentum buffers
    opt.zero_grad(set_to_none=True)
    arch = Architect(net, net.weight_parameters(), net.arch_parameters(), lr=0.01, weight_decay=0.0, order=2,
                     weight_optimizer=opt)
    moments = arch._moments()
    assert all(m is not None for m in moments)
    (approx,), _, _ = unrolled_alpha_grad(net, net.weight_parameters(), net.arch_parameters(), train, val,
                                          xi=XI, weight_decay=WD, r=1e-6, momentum=moments)
    alpha = net.alphas["cell"].detach().clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(unrolled_val_loss(net, train, val, alpha, True, moments), [alpha])
    (without,) = torch.autograd.grad(unrolled_val_loss(net, train, val, alpha, True), [alpha])
    scale = exact.abs().max().item()
    assert torch.allclose(approx, exact, atol=1e-6 * scale, rtol=1e-5)
    assert (exact - without).abs().max() > 1e-3 * scale  # the momentum term matters


def test_first_order_step_is_adam_on_the_validation_gradient(case):
    net, train, val = case
    alpha0 = net.alphas["cell"].detach().clone()
    arch = Architect(net, net.weight_parameters(), net.arch_parameters(), lr=0.01, weight_decay=0.0, order=1)
    grad = torch.autograd.grad(F.cross_entropy(net(val[0]), val[1]), [net.alphas["cell"]])[0]
    arch.step(train, val, xi=XI, weight_decay=WD)
    # Adam's first step moves each coordinate by lr * sign(grad) (up to eps)
    step = net.alphas["cell"].detach() - alpha0
    assert torch.allclose(step, -0.01 * torch.sign(grad), atol=1e-6)
    assert all(p.grad is None for p in net.weight_parameters())


def test_regulariser_adds_its_gradient(case):
    net, train, val = case
    reg_calls = []

    def reg() -> torch.Tensor:
        reg_calls.append(1)
        return torch.logsumexp(net.alphas["cell"], dim=-1).mean()

    arch = Architect(net, net.weight_parameters(), net.arch_parameters(), lr=0.01, weight_decay=0.0, order=1,
                     regulariser=reg)
    arch.step(train, val, xi=XI, weight_decay=WD, reg_weight=0.0)
    assert not reg_calls
    arch.step(train, val, xi=XI, weight_decay=WD, reg_weight=2.0)
    assert reg_calls == [1]
