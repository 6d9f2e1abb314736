"""Algorithm 1 of the paper as a resumable object: adversarial parameter search.

The critic ``C_φ`` maximizes ``E_target[C] − E_source[C(T_θ(·))]`` (a Wasserstein-1 estimate);
the transform's physical parameters θ minimize it. The engine keeps all state (θ, φ, both
optimizers, the running average of θ, the step counter and the sampling RNG) so that a daemon
can stop, checkpoint, and continue exactly where it was (``state_dict`` / ``load_state_dict``),
or warm-start from given θ and φ.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from driftcal.calib.critics.lipschitz import make_lipschitz
from driftcal.calib.device import resolve_device
from driftcal.calib.transforms.base import Transform


@dataclass
class EngineConfig:
    """Hyper-parameters of the adversarial search.

    ``lr_theta`` decays by a cosine from its start value to ``lr_theta_final`` over
    ``schedule_steps`` θ-steps (constant afterwards); 0 disables the schedule. θ is averaged with an
    exponential moving average of decay ``average_decay`` (0 disables averaging).
    """

    batch_size: int = 512
    n_critic: int = 2
    lr_critic: float = 2e-4
    lr_theta: float = 1e-3
    lr_theta_final: float = 1e-4
    schedule_steps: int = 0
    betas_critic: tuple[float, float] = (0.5, 0.999)
    betas_theta: tuple[float, float] = (0.5, 0.999)
    lipschitz: str = "gp"
    clip: float = 0.01
    gp_weight: float = 10.0
    average_decay: float = 0.98
    device: str = "auto"
    bf16: bool = False
    seed: int = 0


class AdversarialEngine:
    """Train θ of a :class:`~driftcal.calib.transforms.Transform` against a critic.

    Parameters
    ----------
    transform : the parametrized map; its ``direction`` says whether it applies to the reference
        (``forward``: compared with the changed data) or to the changed data (``inverse``).
    critic : any ``nn.Module`` mapping a batch ``(N, *event)`` to ``(N,)``.
    config : :class:`EngineConfig`.

    Examples
    --------
    Recover a 0.01 shift of the middle tracker plane:

    >>> import torch
    >>> from driftcal.calib.critics import MLPCritic
    >>> from driftcal.calib.transforms import PlaneShift
    >>> g = torch.Generator().manual_seed(1)
    >>> def tracks(n, shift):
    ...     x0, slope = torch.rand(n, 1, generator=g), torch.randn(n, 1, generator=g) * 0.3
    ...     hits = x0 + slope * torch.tensor([0.0, 0.5, 1.0]) + 1e-3 * torch.randn(n, 3, generator=g)
    ...     return hits + torch.tensor([0.0, shift, 0.0])
    >>> ref, chg = tracks(20000, 0.0), tracks(20000, 0.01)
    >>> _ = torch.manual_seed(0)
    >>> engine = AdversarialEngine(PlaneShift(3), MLPCritic((3,), hidden=(32, 32), preprocess="whiten"),
    ...                            EngineConfig(device="cpu", lr_theta=1e-3, lr_critic=1e-3))
    >>> engine.prepare(ref, chg)
    >>> for _ in range(300):
    ...     _ = engine.step(ref, chg)
    >>> abs(float(engine.coefficients()[1]) - 0.01) < 1e-3
    True
    """

    def __init__(self, transform: Transform, critic: nn.Module, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.transform = transform.to(self.device)
        self.lipschitz = make_lipschitz(cfg.lipschitz, clip=cfg.clip, gp_weight=cfg.gp_weight)
        self.critic = self.lipschitz.prepare(critic).to(self.device)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr_critic, betas=cfg.betas_critic)
        self.opt_theta = torch.optim.Adam([self.transform.theta], lr=cfg.lr_theta, betas=cfg.betas_theta)
        self.theta_avg = self.transform.theta.detach().clone()
        self.steps = 0
        self.schedule_start = 0  # θ-step at which the learning-rate schedule (re)started
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.autocast = cfg.bf16 and self.device.type == "cuda"

    # -- data -------------------------------------------------------------------------------
    def _pools(self, reference: torch.Tensor, changed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target): source is transformed, target is what it must look like."""
        ref = torch.as_tensor(reference, dtype=torch.float32, device=self.device)
        chg = torch.as_tensor(changed, dtype=torch.float32, device=self.device)
        return (ref, chg) if self.transform.direction == "forward" else (chg, ref)

    def _batch(self, pool: torch.Tensor) -> torch.Tensor:
        idx = torch.randint(
            pool.shape[0], (self.config.batch_size,), generator=self.generator, device=self.device
        )
        return pool.index_select(0, idx)

    def _transformed(self, pool: torch.Tensor) -> torch.Tensor:
        """A transformed source batch; the readout noise is drawn from the engine's generator."""
        batch = self._batch(pool)
        z = None
        if getattr(self.transform, "needs_noise", False):
            z = torch.randn(batch.shape, generator=self.generator, device=self.device)
        return self.transform(batch, z=z)

    def _ctx(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        pre = getattr(self.critic, "preprocess", None)
        return x if pre is None else pre(x)

    def _body(self, features: torch.Tensor) -> torch.Tensor:
        body = getattr(self.critic, "body", None)
        with self._ctx():
            return (self.critic(features) if body is None else body(features)).float()

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        return self._body(self._features(x))

    def prepare(self, reference: torch.Tensor, changed: torch.Tensor, *, sample: int = 20000) -> None:
        """Fit the critic's input normalization on (a sample of) the target data."""
        _, target = self._pools(reference, changed)
        fit = getattr(self.critic, "fit_preprocess", None)
        if fit is not None:
            idx = torch.randperm(target.shape[0], generator=self.generator, device=self.device)[:sample]
            fit(target.index_select(0, idx))

    # -- Algorithm 1 ------------------------------------------------------------------------
    def _lr_theta(self) -> float:
        cfg = self.config
        if cfg.schedule_steps <= 0:
            return cfg.lr_theta
        frac = min((self.steps - self.schedule_start) / cfg.schedule_steps, 1.0)
        cos = 0.5 * (1 + math.cos(math.pi * frac))
        return cfg.lr_theta_final + (cfg.lr_theta - cfg.lr_theta_final) * cos

    def step(self, reference: torch.Tensor, changed: torch.Tensor) -> dict[str, float]:
        """One θ update after ``n_critic`` critic updates; returns the critic's distance estimate."""
        cfg = self.config
        source, target = self._pools(reference, changed)
        self.transform.train()
        self.critic.train()
        distance = 0.0
        for _ in range(cfg.n_critic):
            with torch.no_grad():
                real = self._features(self._batch(target))
                fake = self._features(self._transformed(source))
            gap = self._body(real).mean() - self._body(fake).mean()
            loss = -gap + self.lipschitz.penalty(self._body, real, fake, self.generator)
            self.opt_critic.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_critic.step()
            self.lipschitz.after_step(self.critic)
            distance = float(gap.detach())
        for group in self.opt_theta.param_groups:
            group["lr"] = self._lr_theta()
        fake = self._transformed(source)
        loss_theta = -self._score(fake).mean()
        self.opt_theta.zero_grad(set_to_none=True)
        self.critic.requires_grad_(False)
        loss_theta.backward()
        self.critic.requires_grad_(True)
        self.opt_theta.step()
        self.transform.clamp_()
        self._update_average()
        self.steps += 1
        return {"step": float(self.steps), "distance": distance, "loss_theta": float(loss_theta.detach())}

    @torch.no_grad()
    def _update_average(self) -> None:
        decay = self.config.average_decay
        theta = self.transform.theta.detach()
        if decay <= 0 or self.steps == 0:
            self.theta_avg.copy_(theta)
        else:
            # bias-corrected start: early steps average over what exists
            d = min(decay, (1 + self.steps) / (10 + self.steps))
            self.theta_avg.mul_(d).add_(theta, alpha=1 - d)

    # -- read-out ---------------------------------------------------------------------------
    def coefficients(self, *, averaged: bool = True) -> torch.Tensor:
        """Physical coefficients (on CPU) from the averaged or the current θ."""
        theta = self.theta_avg if averaged else None
        return self.transform.coefficients(theta).cpu()

    def distance(
        self,
        reference: torch.Tensor,
        changed: torch.Tensor,
        *,
        averaged: bool = True,
        max_events: int = 20000,
    ) -> float:
        """The critic's Wasserstein estimate on the given (e.g. held-out) data, θ fixed."""
        return self.distance_and_error(reference, changed, averaged=averaged, max_events=max_events)[0]

    @torch.no_grad()
    def distance_and_error(
        self,
        reference: torch.Tensor,
        changed: torch.Tensor,
        *,
        averaged: bool = True,
        max_events: int = 20000,
    ) -> tuple[float, float]:
        """:meth:`distance` and its standard error over the events (critic fixed)."""
        source, target = self._pools(reference, changed)
        self.transform.eval()
        self.critic.eval()
        saved = self.transform.theta.detach().clone()
        if averaged:
            self.transform.theta.copy_(self.theta_avg)
        try:
            means, variances = [], []
            for pool, fn in ((target, None), (source, self.transform)):
                scores = []
                for chunk in pool[:max_events].split(4096):
                    scores.append(self._score(chunk if fn is None else fn(chunk)))
                values = torch.cat(scores).double()
                means.append(float(values.mean()))
                variances.append(float(values.var()) / values.numel() if values.numel() > 1 else 0.0)
            return means[0] - means[1], math.sqrt(variances[0] + variances[1])
        finally:
            self.transform.theta.copy_(saved)

    # -- persistence / warm start -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: θ, φ, optimizers, averaged θ, step, RNG, config."""
        return {
            "transform": self.transform.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_critic": self.opt_critic.state_dict(),
            "opt_theta": self.opt_theta.state_dict(),
            "theta_avg": self.theta_avg.detach().cpu(),
            "steps": self.steps,
            "schedule_start": self.schedule_start,
            "generator": self.generator.get_state().cpu(),
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` (tensors may come from ``torch.load(weights_only=True)``)."""
        self.transform.load_state_dict(state["transform"])
        self.critic.load_state_dict(state["critic"])
        self.opt_critic.load_state_dict(state["opt_critic"])
        self.opt_theta.load_state_dict(state["opt_theta"])
        self.theta_avg = state["theta_avg"].to(self.device).clone()
        self.steps = int(state["steps"])
        self.schedule_start = int(state.get("schedule_start", 0))
        self.generator.set_state(state["generator"].to(self.generator.get_state().device))

    def restart_schedule(self) -> None:
        """Start the θ learning-rate schedule again from ``lr_theta`` (e.g. after a sudden change)."""
        self.schedule_start = self.steps

    @torch.no_grad()
    def warm_start(
        self, *, coefficients: torch.Tensor | None = None, critic: dict[str, Any] | None = None
    ) -> None:
        """Start from given physical coefficients and/or critic weights (optimizer state is kept)."""
        if coefficients is not None:
            self.transform.set_coefficients(torch.as_tensor(coefficients, device=self.device))
            self.theta_avg = self.transform.theta.detach().clone()
        if critic is not None:
            self.critic.load_state_dict(critic)
