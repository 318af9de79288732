//! SGD with momentum, dampening, Nesterov and coupled (L2) weight decay, with PyTorch's
//! `torch.optim.SGD` semantics. Owns the SGD update, which SVRG reuses on its
//! variance-reduced direction; it must not know where the direction comes from.
//!
//! Per step, with d = g + λθ:
//! - momentum μ > 0: buf ← d at the first step, else buf ← μ·buf + (1−τ)·d;
//!   d ← d + μ·buf (Nesterov) or d ← buf;
//! - θ ← θ − lr·d.
//!
//! The first-step special case is two host scalars (`momentum_keep` = 0 or μ,
//! `momentum_new` = 1 or 1−τ), so the graph has no branch. Whether μ is zero decides
//! whether the buffer exists at all, so that (and `nesterov`) is structural; the values
//! of μ, τ, λ and lr are runtime scalars.

use kiln_ir::{GraphBuilder, Init, Tensor};

use super::build::{f, scalar_name, state, ParamRef};
use super::hyper::{Hyper, HyperSpec, Rule};
use super::{check_step, OptimError, Optimizer, Phase};

pub(crate) const SPECS: &[HyperSpec] = &[
    HyperSpec::runtime("lr", 1e-3, Rule::NonNegative, "step size"),
    HyperSpec::runtime(
        "momentum",
        0.0,
        Rule::NonNegative,
        "momentum factor mu (0: no buffer; zero vs non-zero is structural)",
    ),
    HyperSpec::runtime("dampening", 0.0, Rule::UnitClosed, "dampening tau of the momentum"),
    HyperSpec::runtime(
        "weight_decay",
        0.0,
        Rule::NonNegative,
        "coupled L2 penalty: g + lambda*theta",
    ),
    HyperSpec::structural(
        "nesterov",
        0.0,
        Rule::Bool,
        "Nesterov momentum (needs momentum > 0, dampening 0)",
    ),
];

/// Stochastic gradient descent (`sgd`).
#[derive(Clone, Debug)]
pub struct Sgd {
    hyper: Hyper,
}

impl Default for Sgd {
    fn default() -> Self {
        Self::new()
    }
}

impl Sgd {
    pub fn new() -> Self {
        Sgd {
            hyper: Hyper::new("sgd", SPECS),
        }
    }
}

/// Validity of the momentum settings (PyTorch's rule for Nesterov).
pub(crate) fn check_momentum(optimizer: &'static str, h: &Hyper) -> Result<(), OptimError> {
    h.check_complete()?;
    if h.flag("nesterov")? && (h.get("momentum")? <= 0.0 || h.get("dampening")? != 0.0) {
        return Err(OptimError::Invalid {
            optimizer,
            detail: "nesterov needs momentum > 0 and dampening = 0".into(),
        });
    }
    Ok(())
}

/// Append the SGD update of `p` along direction `d`; the momentum buffer is
/// `<param>.<prefix>.momentum`.
pub(crate) fn sgd_update(
    optimizer: &'static str,
    b: &GraphBuilder,
    h: &Hyper,
    p: &ParamRef,
    d: &Tensor,
    prefix: &str,
) -> Result<(), OptimError> {
    let theta = &p.tensor;
    let mut d = d + &(theta * &f(b, optimizer, "weight_decay")?);
    if h.get("momentum")? > 0.0 {
        let buf = state(b, optimizer, p, &format!("{prefix}.momentum"), Init::Zeros)?;
        let keep = f(b, optimizer, "momentum_keep")?;
        let new = f(b, optimizer, "momentum_new")?;
        let buf_new = &(&buf * &keep) + &(&d * &new);
        b.update(&buf, &buf_new);
        d = if h.flag("nesterov")? {
            &d + &(&buf_new * &f(b, optimizer, "momentum")?)
        } else {
            buf_new
        };
    }
    let lr = f(b, optimizer, "lr")?;
    b.update(theta, &(theta - &(&d * &lr)));
    Ok(())
}

/// The host scalars of `sgd_update` at step `step`.
pub(crate) fn sgd_scalars(optimizer: &'static str, h: &Hyper, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
    check_step(optimizer, step)?;
    let mu = h.get("momentum")?;
    let mut v = vec![
        (scalar_name("lr"), h.get("lr")?),
        (scalar_name("weight_decay"), h.get("weight_decay")?),
    ];
    if mu > 0.0 {
        let first = step == 1;
        v.push((scalar_name("momentum_keep"), if first { 0.0 } else { mu }));
        v.push((
            scalar_name("momentum_new"),
            if first { 1.0 } else { 1.0 - h.get("dampening")? },
        ));
        if h.flag("nesterov")? {
            v.push((scalar_name("momentum"), mu));
        }
    }
    Ok(v)
}

/// The structure key of SGD-based optimizers: momentum zero or not, and Nesterov.
pub(crate) fn sgd_structure(h: &Hyper) -> Vec<(String, f64)> {
    let mu = h.get("momentum").unwrap_or(0.0);
    let nesterov = h.get("nesterov").unwrap_or(0.0);
    vec![
        ("momentum>0".into(), (mu > 0.0) as u8 as f64),
        ("nesterov".into(), nesterov),
    ]
}

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn hyper(&self) -> &Hyper {
        &self.hyper
    }
    fn hyper_mut(&mut self) -> &mut Hyper {
        &mut self.hyper
    }
    fn check(&self) -> Result<(), OptimError> {
        check_momentum(self.name(), &self.hyper)
    }
    fn apply(
        &self,
        _phase: Phase,
        b: &GraphBuilder,
        params: &[ParamRef],
        grads: &[Vec<Tensor>],
    ) -> Result<(), OptimError> {
        for (p, g) in params.iter().zip(&grads[0]) {
            sgd_update(self.name(), b, &self.hyper, p, g, "sgd")?;
        }
        Ok(())
    }
    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
        self.check()?;
        sgd_scalars(self.name(), &self.hyper, step)
    }
    fn structure(&self) -> Vec<(String, f64)> {
        sgd_structure(&self.hyper)
    }
}
