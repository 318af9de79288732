//! SVRG and α-SVRG (Johnson & Zhang 2013; Yin et al. 2025), research note
//! ivon_poco.md §3.1–3.2. Owns the control-variate direction and the refresh; the step
//! along that direction is SGD's (`sgd::sgd_update`, with its momentum, Nesterov and
//! weight decay), so α = 0 is exactly SGD.
//!
//! State: the snapshot θ̃ (`svrg.snapshot`) and the full-/mega-batch gradient at it,
//! μ̃ (`svrg.mu`); plus `svrg.momentum` when momentum > 0.
//! - Step graph: two evaluation points on the SAME batch, the current parameters (`""`)
//!   and the snapshot (`"snapshot"`); v = g(θ) − α·(g(θ̃) − μ̃); then the SGD update
//!   with v in place of the gradient.
//! - Refresh graph (option I, run per micro-batch of the mega-batch): on the first
//!   micro-batch θ̃ ← θ and μ̃ ← 0; every micro-batch μ̃ += weight · g(θ̃).

use kiln_ir::{DType, GraphBuilder, Init, Tensor};

use super::build::{f, refresh_first, refresh_values, scalar_name, state, EvalPoint, ParamRef};
use super::hyper::{Hyper, HyperSpec, Rule};
use super::sgd::{check_momentum, sgd_scalars, sgd_structure, sgd_update};
use super::{OptimError, Optimizer, Phase};

const SPECS: &[HyperSpec] = &[
    HyperSpec::runtime("lr", 1e-3, Rule::NonNegative, "step size"),
    HyperSpec::runtime(
        "alpha",
        1.0,
        Rule::UnitClosed,
        "correction strength (1: SVRG, 0: SGD, between: alpha-SVRG)",
    ),
    HyperSpec::runtime(
        "momentum",
        0.0,
        Rule::NonNegative,
        "SGD momentum on the corrected direction (zero vs non-zero is structural)",
    ),
    HyperSpec::runtime("dampening", 0.0, Rule::UnitClosed, "dampening of the momentum"),
    HyperSpec::runtime("weight_decay", 0.0, Rule::NonNegative, "coupled L2 penalty"),
    HyperSpec::structural("nesterov", 0.0, Rule::Bool, "Nesterov momentum"),
];

/// SVRG / α-SVRG on an SGD base (`svrg`).
#[derive(Clone, Debug)]
pub struct Svrg {
    hyper: Hyper,
}

impl Default for Svrg {
    fn default() -> Self {
        Self::new()
    }
}

impl Svrg {
    pub fn new() -> Self {
        Svrg {
            hyper: Hyper::new("svrg", SPECS),
        }
    }
}

/// θ̃ as the refresh graph sees it: θ on the first micro-batch, the stored snapshot after.
fn refreshed_snapshot(b: &GraphBuilder, o: &'static str, p: &ParamRef) -> Result<Tensor, OptimError> {
    let snap = state(b, o, p, "svrg.snapshot", Init::Zeros)?;
    Ok(refresh_first(b, o)?.select(&p.tensor, &snap))
}

impl Optimizer for Svrg {
    fn name(&self) -> &'static str {
        "svrg"
    }
    fn hyper(&self) -> &Hyper {
        &self.hyper
    }
    fn hyper_mut(&mut self) -> &mut Hyper {
        &mut self.hyper
    }
    fn phases(&self) -> &'static [Phase] {
        &[Phase::Step, Phase::Refresh]
    }
    fn check(&self) -> Result<(), OptimError> {
        check_momentum(self.name(), &self.hyper)
    }

    fn eval_points(&self, phase: Phase, b: &GraphBuilder, params: &[ParamRef]) -> Result<Vec<EvalPoint>, OptimError> {
        let o = self.name();
        Ok(match phase {
            Phase::Step => vec![
                EvalPoint {
                    label: String::new(),
                    params: params.iter().map(|p| p.tensor.clone()).collect(),
                },
                EvalPoint {
                    label: "snapshot".into(),
                    params: params
                        .iter()
                        .map(|p| state(b, o, p, "svrg.snapshot", Init::Zeros))
                        .collect::<Result<_, _>>()?,
                },
            ],
            Phase::Refresh => vec![EvalPoint {
                label: String::new(),
                params: params
                    .iter()
                    .map(|p| refreshed_snapshot(b, o, p))
                    .collect::<Result<_, _>>()?,
            }],
        })
    }

    fn apply(
        &self,
        phase: Phase,
        b: &GraphBuilder,
        params: &[ParamRef],
        grads: &[Vec<Tensor>],
    ) -> Result<(), OptimError> {
        let o = self.name();
        for (i, p) in params.iter().enumerate() {
            let mu = state(b, o, p, "svrg.mu", Init::Zeros)?;
            match phase {
                Phase::Step => {
                    let (g_in, g_out) = (&grads[0][i], &grads[1][i]);
                    let v = g_in - &(&(g_out - &mu) * &f(b, o, "alpha")?);
                    sgd_update(o, b, &self.hyper, p, &v, "svrg")?;
                }
                Phase::Refresh => {
                    let snap = state(b, o, p, "svrg.snapshot", Init::Zeros)?;
                    let first = refresh_first(b, o)?;
                    let zero = b.constant(0.0, DType::F32);
                    let acc = first.select(&zero, &mu);
                    let mu_new = &acc + &(&grads[0][i] * &f(b, o, "refresh_weight")?);
                    b.update(&snap, &refreshed_snapshot(b, o, p)?);
                    b.update(&mu, &mu_new);
                }
            }
        }
        Ok(())
    }

    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
        self.check()?;
        let mut v = sgd_scalars(self.name(), &self.hyper, step)?;
        v.push((scalar_name("alpha"), self.hyper.get("alpha")?));
        Ok(v)
    }

    fn refresh_scalars(&self, counter: u64, first: bool, weight: f64) -> Result<Vec<(String, f64)>, OptimError> {
        refresh_values(self.name(), counter, first, weight, false)
    }

    fn structure(&self) -> Vec<(String, f64)> {
        sgd_structure(&self.hyper)
    }
}
