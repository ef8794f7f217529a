"""Op tables: one registry per op family, every factory of a family sharing one signature.

Families and their factory signatures:

* ``conv``     -- ``factory(C_in, C_out, stride, affine) -> nn.Module`` on ``(N, C, H, W)``.
* ``sequence`` -- ``factory(d_model, seq_len) -> nn.Module`` on ``(N, T, d_model)``, shape-preserving.
* ``rnn``      -- ``factory() -> nn.Module``: the activation of a DARTS-RNN node.

Each :class:`OpSpec` also states the algebra the canonical hash relies on: ``zero`` ops output
zeros whatever their input, ``identity`` ops return their input unchanged (on stride-1 edges).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from nas.core.registry import Registry

__all__ = ["OpSpec", "OpTable"]


@dataclass(frozen=True)
class OpSpec:
    """One op of a family: its name, factory and algebraic flags."""

    name: str
    factory: Callable[..., nn.Module]
    zero: bool = False
    identity: bool = False
    parameter_free: bool = False


class OpTable(Registry[OpSpec]):
    """The ops of one family."""

    def __init__(self, family: str, signature: str) -> None:
        super().__init__(f"{family} op")
        self.family = family
        self.signature = signature

    def add(
        self,
        name: str,
        factory: Callable[..., nn.Module],
        *,
        zero: bool = False,
        identity: bool = False,
        parameter_free: bool = False,
    ) -> None:
        self.register(name, OpSpec(name, factory, zero, identity, parameter_free))

    def create(self, name: str, *args: object, **kwargs: object) -> nn.Module:
        """Build the op ``name`` with the family's signature."""
        return self.get(name).factory(*args, **kwargs)
