//! VSGD (variational SGD; Chen, Kuzina, Esmaeili, Tomczak) with the reference
//! implementation's semantics (`generativeai-tue/vsgd`, research note vsgd.md §2.2).
//! Owns the VSGD update and its host scalars; Constant VSGD lives in `constant_vsgd`.
//!
//! State per parameter element, in the reference's doubled-rate units (so its golden
//! tables apply): μ (`vsgd.mu`), B_g (`vsgd.bg`), B_h (`vsgd.bh`), all zero-initialised.
//! Constants: A2 = 2γ + 1 + 2δ with δ = [`VSGD_DELTA`] (the reference's hidden `+1e-4`
//! in "2a"; the paper's Algorithm 1 has δ = 0, the published results used the code),
//! B2g0 = 2γ, B2h0 = 2K_gγ.
//!
//! Per step t (elementwise, no branches):
//! 1. θ ← θ·(1 − ηλ) (decoupled weight decay, applied first);
//! 2. s_g = B_g·a + p_g, s_h = B_h·a + p_h, where the host passes a = 0,
//!    p = B2·/(A2−1) (the prior variances) at t = 1 and a = 1/A2, p = 0 afterwards;
//! 3. μ = (ĝ·s_g + μ_prev·s_h)/(s_g + s_h), σ² = s_g·s_h/(s_g + s_h), m2 = σ² + μ²;
//! 4. B_g ← (1−ρ₁)·B_g + ρ₁·(B2g0 + σ² + (μ − μ_prev)²),
//!    B_h ← (1−ρ₂)·B_h + ρ₂·(B2h0 + σ² + (μ − ĝ)²), with ρ_i = t^−κ_i
//!    (the squared-difference form; the reference expands it, equal up to rounding);
//! 5. θ ← θ − η·μ/(√m2 + ε) (ε outside the root, no bias correction).
//!
//! The step counter is global (every parameter of a whole-graph step gets a gradient
//! every step), which is the reference's per-parameter counter in that setting.

use kiln_ir::{GraphBuilder, Init, Tensor};

use super::build::{f, scalar_name, state, ParamRef};
use super::hyper::{Hyper, HyperSpec, Rule};
use super::{check_step, OptimError, Optimizer, Phase};

/// Half of the reference's hard-coded `+1e-4` in A2 ("2a" = 2γ + 1 + 1e-4).
pub const VSGD_DELTA: f64 = 5e-5;

const SPECS: &[HyperSpec] = &[
    HyperSpec::runtime(
        "lr",
        0.1,
        Rule::NonNegative,
        "step size eta (|step| <= eta per element; about 0.01 suits MLPs)",
    ),
    HyperSpec::runtime(
        "kg",
        30.0,
        Rule::Positive,
        "K_g, prior ratio of observation noise to gradient drift",
    ),
    HyperSpec::runtime("gamma", 1e-8, Rule::Positive, "prior strength of the Gamma priors"),
    HyperSpec::runtime(
        "kappa1",
        0.81,
        Rule::Kappa,
        "decay exponent of the drift rate's SVI step t^-kappa1",
    ),
    HyperSpec::runtime(
        "kappa2",
        0.9,
        Rule::Kappa,
        "decay exponent of the noise rate's SVI step t^-kappa2",
    ),
    HyperSpec::runtime("eps", 1e-8, Rule::NonNegative, "added to sqrt(m2), outside the root"),
    HyperSpec::runtime(
        "weight_decay",
        0.0,
        Rule::NonNegative,
        "decoupled decay: theta*(1 - eta*lambda) first",
    ),
];

/// VSGD (`vsgd`).
#[derive(Clone, Debug)]
pub struct Vsgd {
    hyper: Hyper,
}

impl Default for Vsgd {
    fn default() -> Self {
        Self::new()
    }
}

impl Vsgd {
    pub fn new() -> Self {
        Vsgd {
            hyper: Hyper::new("vsgd", SPECS),
        }
    }
}

/// The VSGD constants (A2, B2g0, B2h0) from the hyperparameters, in f64.
pub(crate) fn constants(h: &Hyper) -> Result<(f64, f64, f64), OptimError> {
    let gamma = h.get("gamma")?;
    let a2 = 2.0 * gamma + 1.0 + 2.0 * VSGD_DELTA;
    Ok((a2, 2.0 * gamma, 2.0 * h.get("kg")? * gamma))
}

impl Optimizer for Vsgd {
    fn name(&self) -> &'static str {
        "vsgd"
    }
    fn hyper(&self) -> &Hyper {
        &self.hyper
    }
    fn hyper_mut(&mut self) -> &mut Hyper {
        &mut self.hyper
    }

    fn apply(
        &self,
        _phase: Phase,
        b: &GraphBuilder,
        params: &[ParamRef],
        grads: &[Vec<Tensor>],
    ) -> Result<(), OptimError> {
        let o = self.name();
        let s = |n: &str| f(b, o, n);
        for (p, g) in params.iter().zip(&grads[0]) {
            let mu = state(b, o, p, "vsgd.mu", Init::Zeros)?;
            let bg = state(b, o, p, "vsgd.bg", Init::Zeros)?;
            let bh = state(b, o, p, "vsgd.bh", Init::Zeros)?;
            let theta = &p.tensor * &s("decay")?;
            let a = s("var_scale")?;
            let sg = &(&bg * &a) + &s("prior_g")?;
            let sh = &(&bh * &a) + &s("prior_h")?;
            let sum = &sg + &sh;
            let mu_new = &(&(g * &sg) + &(&mu * &sh)) / &sum;
            let var = &(&sg * &sh) / &sum;
            let m2 = &var + &mu_new.square();
            let dg = &mu_new - &mu;
            let dh = &mu_new - g;
            let bg_target = &(&s("b2g0")? + &var) + &dg.square();
            let bh_target = &(&s("b2h0")? + &var) + &dh.square();
            let bg_new = &(&bg * &s("keep1")?) + &(&bg_target * &s("rho1")?);
            let bh_new = &(&bh * &s("keep2")?) + &(&bh_target * &s("rho2")?);
            let step = &mu_new * &(&s("lr")? / &(&m2.sqrt() + &s("eps")?));
            b.update(&mu, &mu_new);
            b.update(&bg, &bg_new);
            b.update(&bh, &bh_new);
            b.update(&p.tensor, &(&theta - &step));
        }
        Ok(())
    }

    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
        let t = check_step(self.name(), step)?;
        let h = &self.hyper;
        let (a2, b2g0, b2h0) = constants(h)?;
        let (lr, wd) = (h.get("lr")?, h.get("weight_decay")?);
        let rho1 = t.powf(-h.get("kappa1")?);
        let rho2 = t.powf(-h.get("kappa2")?);
        let first = step == 1;
        Ok(vec![
            (scalar_name("lr"), lr),
            (scalar_name("decay"), 1.0 - lr * wd),
            (scalar_name("eps"), h.get("eps")?),
            (scalar_name("var_scale"), if first { 0.0 } else { 1.0 / a2 }),
            (scalar_name("prior_g"), if first { b2g0 / (a2 - 1.0) } else { 0.0 }),
            (scalar_name("prior_h"), if first { b2h0 / (a2 - 1.0) } else { 0.0 }),
            (scalar_name("b2g0"), b2g0),
            (scalar_name("b2h0"), b2h0),
            (scalar_name("rho1"), rho1),
            (scalar_name("keep1"), 1.0 - rho1),
            (scalar_name("rho2"), rho2),
            (scalar_name("keep2"), 1.0 - rho2),
        ])
    }
}
