//! IVON-PoCo: IVON with posterior correction, the rule kiln *derives* in research note
//! ivon_poco.md §3.6 from the Bayesian learning rule (the paper's algorithm box is not
//! public; bit-compatibility with the authors' code is unverified). Owns the corrected
//! gradient/Hessian estimates, the anchor state and the refresh; the update itself is
//! IVON's (`ivon::ivon_update`), so α = 0 reproduces IVON exactly.
//!
//! State: IVON's m (the parameter), ḡ (`ivon_poco.momentum`), h (`ivon_poco.hess`), plus
//! the anchor m_out, h_out (`ivon_poco.m_out`, `.h_out`) and the anchor statistics ḡ_out,
//! h̄_out (`.g_out`, `.hbar_out`): mega-batch means of the gradient and of the
//! reparameterisation Hessian estimate at samples of q_out.
//!
//! Step graph (one mini-batch, K = 1), two evaluation points on the same batch:
//! - θ_in = m + σ_in·z_in (label `""`, the same noise stream as IVON's sample 0),
//!   θ_out = m_out + σ_out·z_out (label `"anchor"`), σ = 1/√(ess·(h+δ));
//! - ĥ_in, ĥ_out: IVON's estimator with (h, z_in) and (h_out, z_out);
//! - ĝ_c = g_in − α(g_out − ḡ_out) + α(h̄_out − ĥ_out)·(m − m_out)  [the last term: `prox`, U1];
//!   ĥ_c = ĥ_in − α(ĥ_out − h̄_out);
//! - the IVON update with (ĝ_c, ĥ_c).
//!
//! Refresh graph (per micro-batch of the mega-batch): on the first micro-batch
//! m_out ← m, h_out ← h and the statistics restart at 0; each micro-batch draws a fresh
//! z (U4), θ = m_out + σ_out·z, and adds weight·g and weight·ĥ to ḡ_out and h̄_out.
//!
//! Open choices of §3.8 and kiln's defaults: U1 `prox` = 1 (keep), U2 `shared_noise` = 0
//! (independent z_in, z_out), U3/U5 α is a runtime scalar (set α = 0 for a warm-up with
//! plain IVON), U4 exact per-refresh averages, U6 momentum on the corrected gradient.

use kiln_ir::{DType, GraphBuilder, Init, Tensor};

use super::build::{
    f, noise, refresh_first, refresh_values, scalar_name, state, EvalPoint, ParamRef, SLOT_ANCHOR, SLOT_REFRESH,
};
use super::hyper::{Hyper, HyperSpec, Rule};
use super::ivon::{hess_sample, hess_state, ivon_scalars, ivon_update, sigma};
use super::{NoiseSource, OptimError, Optimizer, Phase};

const SPECS: &[HyperSpec] = &[
    HyperSpec::required("lr", Rule::NonNegative, "step size"),
    HyperSpec::required(
        "ess",
        Rule::Positive,
        "effective sample size lambda, typically the training-set size",
    ),
    HyperSpec::runtime("hess_init", 1.0, Rule::Positive, "initial Hessian h0"),
    HyperSpec::runtime("beta1", 0.9, Rule::UnitHalfOpen, "gradient momentum"),
    HyperSpec::runtime("beta2", 0.99999, Rule::UnitHalfOpen, "Hessian EMA coefficient"),
    HyperSpec::runtime(
        "weight_decay",
        1e-4,
        Rule::NonNegative,
        "delta, prior precision per example",
    ),
    HyperSpec::runtime(
        "clip_radius",
        f64::INFINITY,
        Rule::PositiveOrInf,
        "elementwise clip of the preconditioned step",
    ),
    HyperSpec::runtime("debias", 1.0, Rule::Bool, "divide the momentum by 1 - beta1^t"),
    HyperSpec::runtime("rescale_lr", 1.0, Rule::Bool, "effective step lr*(hess_init + delta)"),
    HyperSpec::runtime("seed", 0.0, Rule::Int32, "Philox seed of the weight noise"),
    HyperSpec::runtime(
        "alpha",
        1.0,
        Rule::UnitClosed,
        "correction strength (0: plain IVON, 1: full correction)",
    ),
    HyperSpec::structural(
        "prox",
        1.0,
        Rule::Bool,
        "keep the Hessian prox term alpha*(hbar_out - h_out_hat)*(m - m_out) (U1)",
    ),
    HyperSpec::structural(
        "shared_noise",
        0.0,
        Rule::Bool,
        "use the same z for theta_in and theta_out (U2)",
    ),
];

const P: &str = "ivon_poco";

/// IVON-PoCo (`ivon-poco`).
#[derive(Clone, Debug)]
pub struct IvonPoco {
    hyper: Hyper,
    noise: NoiseSource,
}

impl Default for IvonPoco {
    fn default() -> Self {
        Self::new()
    }
}

/// The tensors both stages of a phase need for one parameter.
struct Anchor {
    /// The anchor mean and Hessian the phase uses (refreshed on a refresh's first batch).
    m_out: Tensor,
    h_out: Tensor,
    sigma_out: Tensor,
    z_out: Tensor,
}

impl IvonPoco {
    pub fn new() -> Self {
        IvonPoco {
            hyper: Hyper::new("ivon-poco", SPECS),
            noise: NoiseSource::Philox,
        }
    }

    fn st(&self, b: &GraphBuilder, p: &ParamRef, name: &str) -> Result<Tensor, OptimError> {
        state(b, self.name(), p, &format!("{P}.{name}"), Init::Zeros)
    }

    fn z_in(&self, b: &GraphBuilder, p: &ParamRef) -> Result<Tensor, OptimError> {
        noise(b, self.name(), p, self.noise, "", 0, "step")
    }

    fn anchor(&self, phase: Phase, b: &GraphBuilder, p: &ParamRef) -> Result<Anchor, OptimError> {
        let o = self.name();
        let (m_out, h_out) = (self.st(b, p, "m_out")?, self.st(b, p, "h_out")?);
        let (m_out, h_out, z_out) = match phase {
            Phase::Step => {
                let z = if self.hyper.flag("shared_noise")? {
                    self.z_in(b, p)?
                } else {
                    noise(b, o, p, self.noise, "anchor", SLOT_ANCHOR, "step")?
                };
                (m_out, h_out, z)
            }
            Phase::Refresh => {
                let first = refresh_first(b, o)?;
                let h = hess_state(b, o, &self.hyper, p, P)?;
                (
                    first.select(&p.tensor, &m_out),
                    first.select(&h, &h_out),
                    noise(b, o, p, self.noise, "", SLOT_REFRESH, "refresh_step")?,
                )
            }
        };
        let sigma_out = sigma(b, o, &h_out)?;
        Ok(Anchor {
            m_out,
            h_out,
            sigma_out,
            z_out,
        })
    }
}

impl Optimizer for IvonPoco {
    fn name(&self) -> &'static str {
        "ivon-poco"
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
    fn noise_source(&self) -> Option<NoiseSource> {
        Some(self.noise)
    }
    fn set_noise_source(&mut self, source: NoiseSource) -> Result<(), OptimError> {
        self.noise = source;
        Ok(())
    }

    fn eval_points(&self, phase: Phase, b: &GraphBuilder, params: &[ParamRef]) -> Result<Vec<EvalPoint>, OptimError> {
        let o = self.name();
        let mut inner = Vec::new();
        let mut outer = Vec::new();
        for p in params {
            let a = self.anchor(phase, b, p)?;
            outer.push(&a.m_out + &(&a.sigma_out * &a.z_out));
            if phase == Phase::Step {
                let h = hess_state(b, o, &self.hyper, p, P)?;
                inner.push(&p.tensor + &(&sigma(b, o, &h)? * &self.z_in(b, p)?));
            }
        }
        Ok(match phase {
            Phase::Step => vec![
                EvalPoint {
                    label: String::new(),
                    params: inner,
                },
                EvalPoint {
                    label: "anchor".into(),
                    params: outer,
                },
            ],
            Phase::Refresh => vec![EvalPoint {
                label: String::new(),
                params: outer,
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
            let a = self.anchor(phase, b, p)?;
            let (gbar_out, hbar_out) = (self.st(b, p, "g_out")?, self.st(b, p, "hbar_out")?);
            let g_out = &grads[grads.len() - 1][i];
            let hhat_out = hess_sample(b, o, &a.h_out, &(g_out * &(&a.sigma_out * &a.z_out)))?;
            match phase {
                Phase::Step => {
                    let g_in = &grads[0][i];
                    let h = hess_state(b, o, &self.hyper, p, P)?;
                    let mom = self.st(b, p, "momentum")?;
                    let hhat_in = hess_sample(b, o, &h, &(g_in * &(&sigma(b, o, &h)? * &self.z_in(b, p)?)))?;
                    let alpha = f(b, o, "alpha")?;
                    let mut gc = g_in - &(&(g_out - &gbar_out) * &alpha);
                    if self.hyper.flag("prox")? {
                        let prox = &(&hbar_out - &hhat_out) * &(&p.tensor - &a.m_out);
                        gc = &gc + &(&prox * &alpha);
                    }
                    let hc = &hhat_in - &(&(&hhat_out - &hbar_out) * &alpha);
                    ivon_update(b, o, p, &mom, &h, &gc, &hc)?;
                }
                Phase::Refresh => {
                    let first = refresh_first(b, o)?;
                    let zero = b.constant(0.0, DType::F32);
                    let w = f(b, o, "refresh_weight")?;
                    let g_acc = &first.select(&zero, &gbar_out) + &(g_out * &w);
                    let h_acc = &first.select(&zero, &hbar_out) + &(&hhat_out * &w);
                    b.update(&self.st(b, p, "m_out")?, &a.m_out);
                    b.update(&self.st(b, p, "h_out")?, &a.h_out);
                    b.update(&gbar_out, &g_acc);
                    b.update(&hbar_out, &h_acc);
                }
            }
        }
        Ok(())
    }

    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
        self.check()?;
        let mut v = ivon_scalars(self.name(), &self.hyper, step, self.noise == NoiseSource::Philox)?;
        v.push((scalar_name("alpha"), self.hyper.get("alpha")?));
        Ok(v)
    }

    fn refresh_scalars(&self, counter: u64, first: bool, weight: f64) -> Result<Vec<(String, f64)>, OptimError> {
        self.check()?;
        let philox = self.noise == NoiseSource::Philox;
        let mut v = refresh_values(self.name(), counter, first, weight, philox)?;
        v.push((scalar_name("ess"), self.hyper.get("ess")?));
        v.push((scalar_name("delta"), self.hyper.get("weight_decay")?));
        if philox {
            v.push((scalar_name("seed"), self.hyper.get("seed")?));
        }
        Ok(v)
    }
}
