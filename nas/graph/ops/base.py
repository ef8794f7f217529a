"""Op tables: one registry per op family, every factory of a family sharing one signature.

Families and their factory signatures:

* ``conv``     -- ``factory(C_in, C_out, stride, affine) -> nn.Module`` on ``(N, C, H, W)``.
* ``sequence`` -- ``factory(d_model, seq_len) -> nn.Module`` on ``(N, T, d_model)``, shape-preserving.
* ``rnn``      -- ``factory() -> nn.Module``: the activation of a DARTS-RNN node.

Each :class:`OpSpec` also states the algebra the canonical hash relies on: ``zero`` ops output
zeros whatever their input, ``identity`` ops return their input unchanged (on stride-1 edges).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from nas.core.registry import RegistrationError, Registry

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
    """The ops of one family; ``signature`` is the family's factory signature, e.g.
    ``"factory(C_in, C_out, stride, affine)"``."""

    def __init__(self, family: str, signature: str) -> None:
        super().__init__(f"{family} op")
        self.family = family
        self.signature = signature
        self.arguments = tuple(a.strip() for a in signature[signature.index("(") + 1:signature.rindex(")")].split(",")
                               if a.strip())

    def add(
        self,
        name: str,
        factory: Callable[..., nn.Module],
        *,
        zero: bool = False,
        identity: bool = False,
        parameter_free: bool = False,
    ) -> Callable[..., nn.Module]:
        """Add op ``name`` built by ``factory`` (which must take the family's arguments positionally) and return
        the factory. ``zero``: its output is zeros whatever the input; ``identity``: it returns its input (on
        stride-1 edges); ``parameter_free``: it has no trainable parameters. The canonical hash relies on the
        first two, so state them only when they hold."""
        if not callable(factory):
            raise RegistrationError(f"{self.kind} {name!r}: factory {factory!r} is not callable; it must be "
                                    f"{self.signature}")
        try:
            inspect.signature(factory).bind(*self.arguments)
        except TypeError as err:
            raise RegistrationError(f"{self.kind} {name!r}: factory {getattr(factory, '__qualname__', factory)} "
                                    f"cannot be called as {self.signature} ({err})") from None
        except ValueError:  # no signature to inspect (some builtins): trust it
            pass
        if zero and identity:
            raise RegistrationError(f"{self.kind} {name!r}: an op cannot be both zero and identity")
        self.register(name, OpSpec(name, factory, zero, identity, parameter_free))
        return factory

    def create(self, name: str, *args: object, **kwargs: object) -> nn.Module:
        """Build the op ``name`` with the family's signature."""
        return self.get(name).factory(*args, **kwargs)
