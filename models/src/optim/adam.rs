//! Adam and AdamW with PyTorch's `torch.optim.Adam`/`AdamW` semantics (bias-corrected,
//! ε outside the square root). Owns both update rules; they differ only in where the
//! weight decay goes.
//!
//! Per step t:
//! - Adam: d = g + λθ (coupled L2). AdamW: θ ← θ·(1 − lr·λ) first (decoupled), d = g.
//! - m ← m + (1−β1)(d − m) (PyTorch's lerp); v ← β2·v + (1−β2)·d².
//! - θ ← θ − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε).
//!
//! The host precomputes `step_size` = lr/(1−β1^t) and `bc2_sqrt` = √(1−β2^t) in f64.

use kiln_ir::{GraphBuilder, Init, Tensor};

use super::build::{f, scalar_name, state, ParamRef};
use super::hyper::{Hyper, HyperSpec, Rule};
use super::{check_step, OptimError, Optimizer, Phase};

const ADAM: &[HyperSpec] = &[
    HyperSpec::runtime("lr", 1e-3, Rule::NonNegative, "step size"),
    HyperSpec::runtime("beta1", 0.9, Rule::UnitHalfOpen, "EMA coefficient of the gradient"),
    HyperSpec::runtime(
        "beta2",
        0.999,
        Rule::UnitHalfOpen,
        "EMA coefficient of the squared gradient",
    ),
    HyperSpec::runtime(
        "eps",
        1e-8,
        Rule::NonNegative,
        "added to the denominator, outside the square root",
    ),
    HyperSpec::runtime(
        "weight_decay",
        0.0,
        Rule::NonNegative,
        "coupled L2 penalty: g + lambda*theta",
    ),
];

const ADAMW: &[HyperSpec] = &[
    HyperSpec::runtime("lr", 1e-3, Rule::NonNegative, "step size"),
    HyperSpec::runtime("beta1", 0.9, Rule::UnitHalfOpen, "EMA coefficient of the gradient"),
    HyperSpec::runtime(
        "beta2",
        0.999,
        Rule::UnitHalfOpen,
        "EMA coefficient of the squared gradient",
    ),
    HyperSpec::runtime(
        "eps",
        1e-8,
        Rule::NonNegative,
        "added to the denominator, outside the square root",
    ),
    HyperSpec::runtime(
        "weight_decay",
        1e-2,
        Rule::NonNegative,
        "decoupled decay: theta*(1 - lr*lambda) before the step",
    ),
];

/// Adam (`adam`) or AdamW (`adamw`).
#[derive(Clone, Debug)]
pub struct Adam {
    hyper: Hyper,
    decoupled: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Self::new()
    }
}

impl Adam {
    /// Adam with coupled L2 weight decay (default 0).
    pub fn new() -> Self {
        Adam {
            hyper: Hyper::new("adam", ADAM),
            decoupled: false,
        }
    }

    /// AdamW: decoupled weight decay (default 0.01, as PyTorch).
    pub fn adamw() -> Self {
        Adam {
            hyper: Hyper::new("adamw", ADAMW),
            decoupled: true,
        }
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        if self.decoupled {
            "adamw"
        } else {
            "adam"
        }
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
        for (p, g) in params.iter().zip(&grads[0]) {
            let theta = &p.tensor;
            let (theta, d) = if self.decoupled {
                (theta * &f(b, o, "decay")?, g.clone())
            } else {
                (theta.clone(), g + &(theta * &f(b, o, "weight_decay")?))
            };
            let m = state(b, o, p, &format!("{o}.m"), Init::Zeros)?;
            let v = state(b, o, p, &format!("{o}.v"), Init::Zeros)?;
            let m_new = &m + &(&(&d - &m) * &f(b, o, "one_minus_beta1")?);
            let v_new = &(&v * &f(b, o, "beta2")?) + &(&(&d * &d) * &f(b, o, "one_minus_beta2")?);
            let denom = &(&v_new.sqrt() / &f(b, o, "bc2_sqrt")?) + &f(b, o, "eps")?;
            let theta_new = &theta - &(&(&m_new / &denom) * &f(b, o, "step_size")?);
            b.update(&m, &m_new);
            b.update(&v, &v_new);
            b.update(&p.tensor, &theta_new);
        }
        Ok(())
    }

    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
        let t = check_step(self.name(), step)?;
        let h = &self.hyper;
        let (lr, b1, b2, wd) = (h.get("lr")?, h.get("beta1")?, h.get("beta2")?, h.get("weight_decay")?);
        let mut v = vec![
            (scalar_name("one_minus_beta1"), 1.0 - b1),
            (scalar_name("beta2"), b2),
            (scalar_name("one_minus_beta2"), 1.0 - b2),
            (scalar_name("eps"), h.get("eps")?),
            (scalar_name("step_size"), lr / (1.0 - b1.powf(t))),
            (scalar_name("bc2_sqrt"), (1.0 - b2.powf(t)).sqrt()),
        ];
        if self.decoupled {
            v.push((scalar_name("decay"), 1.0 - lr * wd));
        } else {
            v.push((scalar_name("weight_decay"), wd));
        }
        Ok(v)
    }
}
