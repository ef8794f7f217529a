"""Reinforcement learning: an LSTM controller trained with REINFORCE (Zoph & Le, ICLR 2017; ENAS, Pham et
al., ICML 2018).

The controller emits the space's decisions one after another (``decision_sizes()``), each conditioned on the
previous ones through an LSTM. Rewards are the primary objective; the update is REINFORCE with an
exponential moving-average baseline and an entropy bonus, applied once ``batch_size`` results have arrived,
so parallel workers stay busy. Sampling draws from the strategy's own ``torch.Generator``; the controller's
weights, optimiser state, baseline and generator state are all part of ``state_dict()``.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import torch
from torch import nn

from nas.core.checks import check_int, check_number
from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Trial
from strategies.base import Strategy

__all__ = ["ReinforceController", "Controller"]


class Controller(nn.Module):
    """Autoregressive policy over a list of categorical decisions."""

    def __init__(self, sizes: list[int], hidden: int = 64, tanh_c: float = 2.5, temperature: float = 5.0) -> None:
        super().__init__()
        self.sizes = sizes
        self.tanh_c = tanh_c
        self.temperature = temperature
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.embeds = nn.ModuleList(nn.Embedding(n, hidden) for n in sizes)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in sizes)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, batch: int, decisions: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score the given) decisions; returns decisions (B, D), log-prob sums and entropy sums (B,)."""
        x = self.start.expand(batch, -1)
        h = torch.zeros_like(x)
        c = torch.zeros_like(x)
        out, log_prob, entropy = [], torch.zeros(batch), torch.zeros(batch)
        for i in range(len(self.sizes)):
            h, c = self.lstm(x, (h, c))
            logits = self.heads[i](h) / self.temperature
            if self.tanh_c:
                logits = self.tanh_c * torch.tanh(logits)
            logp = torch.log_softmax(logits, dim=-1)
            if decisions is None:
                d = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            else:
                d = decisions[:, i]
            log_prob = log_prob + logp.gather(1, d[:, None]).squeeze(1)
            entropy = entropy - (logp.exp() * logp).sum(dim=1)
            out.append(d)
            x = self.embeds[i](d)
        return torch.stack(out, dim=1), log_prob, entropy


def _pack(obj: Any) -> str:
    """Tensors and their containers -> base64 text of ``torch.save`` (read back with weights_only=True)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return base64.b64encode(buf.getvalue()).decode()


def _unpack(text: str) -> Any:
    return torch.load(io.BytesIO(base64.b64decode(text)), weights_only=True)


class ReinforceController(Strategy):
    """Options: ``lr`` (Adam, 0.01), ``batch_size`` (results per update, 4), ``entropy_weight`` (1e-4),
    ``baseline_decay`` (0.9), ``hidden`` (64)."""

    name = "rl"

    def __init__(self, *, lr: float = 0.01, batch_size: int = 4, entropy_weight: float = 1e-4,
                 baseline_decay: float = 0.9, hidden: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        option = f"strategy {self.name} option"
        self.lr = check_number(f"{option} lr", lr, low=1e-6, high=1.0)
        self.batch_size = check_int(f"{option} batch_size", batch_size, minimum=1)
        self.entropy_weight = check_number(f"{option} entropy_weight", entropy_weight, low=0.0, high=1.0)
        self.baseline_decay = check_number(f"{option} baseline_decay", baseline_decay, low=0.0, high=1.0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.controller = Controller(self.space.decision_sizes(), check_int(f"{option} hidden", hidden, minimum=1))
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.lr)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.baseline: float | None = None
        self.buffer: list[tuple[list[int], float]] = []

    def _propose(self, n: int) -> list[Architecture]:
        with torch.no_grad():
            decisions, _, _ = self.controller(n, generator=self.generator)
        return [self.space.decode(d) for d in decisions.tolist()]

    def _observe(self, trial: Trial, result: Result) -> None:
        fit = self.fitness(result)
        if fit is None:
            return
        self.buffer.append((self.space.encode(trial.arch), fit[0]))
        if len(self.buffer) >= self.batch_size:
            self._update()

    def _update(self) -> None:
        decisions = torch.tensor([d for d, _ in self.buffer])
        rewards = torch.tensor([r for _, r in self.buffer], dtype=torch.float32)
        advantages = []
        for r in rewards.tolist():
            self.baseline = r if self.baseline is None else self.baseline_decay * self.baseline + (
                1 - self.baseline_decay) * r
            advantages.append(r - self.baseline)
        _, log_prob, entropy = self.controller(len(self.buffer), decisions=decisions)
        loss = -(torch.tensor(advantages) * log_prob).mean() - self.entropy_weight * entropy.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.buffer = []

    def _state(self) -> dict[str, Any]:
        return {"controller": _pack(self.controller.state_dict()), "optimizer": _pack(self.optimizer.state_dict()),
                "generator": _pack(self.generator.get_state()), "baseline": self.baseline,
                "buffer": [[d, r] for d, r in self.buffer]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(_unpack(state["controller"]))
        self.optimizer.load_state_dict(_unpack(state["optimizer"]))
        self.generator.set_state(_unpack(state["generator"]))
        self.baseline = state["baseline"]
        self.buffer = [(list(d), float(r)) for d, r in state["buffer"]]
