//! Constant VSGD: **kiln's interpretation**, not a definition from the VSGD paper or its
//! reference code (neither defines a "constant" variant; research note vsgd.md §3).
//! Owns that variant's update.
//!
//! kiln reads it as VSGD with *frozen precisions*: the Gamma rates B_g, B_h never move
//! from their prior values, so the predictive variances stay at their step-1 values
//! s_g = 2γ/(A2−1) and s_h = 2K_gγ/(A2−1). Then μ is a plain EMA of the gradient with
//! weight w = s_g/(s_g+s_h) = 1/(1+K_g) on ĝ, σ² = s_g·s_h/(s_g+s_h) is a constant
//! (1.935096852e-4 at the defaults), and the step is VSGD's soft sign:
//! θ ← θ·(1−ηλ) − η·μ/(√(μ²+σ²) + ε). One state tensor (`constant_vsgd.mu`); every
//! constant is a host-computed runtime scalar. Its first step equals VSGD's.

use kiln_ir::{GraphBuilder, Init, Tensor};

use super::build::{f, scalar_name, state, ParamRef};
use super::hyper::{Hyper, HyperSpec, Rule};
use super::vsgd::constants;
use super::{check_step, OptimError, Optimizer, Phase};

const SPECS: &[HyperSpec] = &[
    HyperSpec::runtime(
        "lr",
        0.1,
        Rule::NonNegative,
        "step size eta (|step| <= eta per element)",
    ),
    HyperSpec::runtime(
        "kg",
        30.0,
        Rule::Positive,
        "K_g: the gradient's EMA weight is 1/(1+K_g)",
    ),
    HyperSpec::runtime(
        "gamma",
        1e-8,
        Rule::Positive,
        "prior strength (sets the constant variance)",
    ),
    HyperSpec::runtime("eps", 1e-8, Rule::NonNegative, "added to sqrt(m2), outside the root"),
    HyperSpec::runtime(
        "weight_decay",
        0.0,
        Rule::NonNegative,
        "decoupled decay: theta*(1 - eta*lambda) first",
    ),
];

/// Constant VSGD (`constant-vsgd`), kiln's frozen-precision reading.
#[derive(Clone, Debug)]
pub struct ConstantVsgd {
    hyper: Hyper,
}

impl Default for ConstantVsgd {
    fn default() -> Self {
        Self::new()
    }
}

impl ConstantVsgd {
    pub fn new() -> Self {
        ConstantVsgd {
            hyper: Hyper::new("constant-vsgd", SPECS),
        }
    }
}

impl Optimizer for ConstantVsgd {
    fn name(&self) -> &'static str {
        "constant-vsgd"
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
            let mu = state(b, o, p, "constant_vsgd.mu", Init::Zeros)?;
            let theta = &p.tensor * &s("decay")?;
            let mu_new = &(g * &s("weight_g")?) + &(&mu * &s("weight_mu")?);
            let m2 = &mu_new.square() + &s("var")?;
            let step = &mu_new * &(&s("lr")? / &(&m2.sqrt() + &s("eps")?));
            b.update(&mu, &mu_new);
            b.update(&p.tensor, &(&theta - &step));
        }
        Ok(())
    }

    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
        check_step(self.name(), step)?;
        let h = &self.hyper;
        let (a2, b2g0, b2h0) = constants(h)?;
        let (sg, sh) = (b2g0 / (a2 - 1.0), b2h0 / (a2 - 1.0));
        let (lr, wd) = (h.get("lr")?, h.get("weight_decay")?);
        Ok(vec![
            (scalar_name("lr"), lr),
            (scalar_name("decay"), 1.0 - lr * wd),
            (scalar_name("eps"), h.get("eps")?),
            (scalar_name("weight_g"), sg / (sg + sh)),
            (scalar_name("weight_mu"), sh / (sg + sh)),
            (scalar_name("var"), sg * sh / (sg + sh)),
        ])
    }
}
