//! IVON (Improved Variational Online Newton; Shen et al. 2024) with the semantics of the
//! reference package `ivon-opt` 0.1.3 (research note ivon_poco.md §2). Owns the IVON
//! sampling, Hessian estimate and update, which IVON-PoCo reuses unchanged.
//!
//! The parameter *is* the posterior mean m; state `ivon.momentum` (ḡ, zeros) and
//! `ivon.hess` (h, initialised to `hess_init`). One step with K MC samples:
//! 1. sample (stage 1): σ = 1/√(ess·(h+δ)) with the old h; θ_k = m + σ·z_k;
//! 2. the caller's gradients g_k = ∇ℓ̄(θ_k) of the mean loss (no weight-decay term);
//! 3. update: ĝ = mean_k g_k, ĥ = ess·(h+δ)·mean_k(σz_k·g_k) (the 'price'
//!    reparameterisation estimator; Welford-order means as the reference);
//!    ḡ ← β1·ḡ + (1−β1)·ĝ; h ← β2·h + (1−β2)·ĥ + ½(1−β2)²(h−ĥ)²/(h+δ);
//!    m ← m − lr_eff·clip((ḡ/d + δ·m)/(h_new+δ), ±r) with lr_eff = lr·(h0+δ)
//!    (`rescale_lr`) and d = 1−β1^t (`debias`).
//!
//! z is regenerated in the update from the same Philox stream (or read again from the
//! injected noise input), never stored. The 'gradsq' Hessian estimator and DDP `sync`
//! of the reference are not implemented.

use kiln_ir::{GraphBuilder, Init, Tensor};

use super::build::{f, noise, scalar_name, state, EvalPoint, ParamRef, MAX_SAMPLES};
use super::hyper::{Hyper, HyperSpec, Rule};
use super::{check_step, no_refresh, NoiseSource, OptimError, Optimizer, Phase};

const SPECS: &[HyperSpec] = &[
    HyperSpec::required("lr", Rule::NonNegative, "step size"),
    HyperSpec::required(
        "ess",
        Rule::Positive,
        "effective sample size lambda, typically the training-set size",
    ),
    HyperSpec::runtime(
        "hess_init",
        1.0,
        Rule::Positive,
        "initial Hessian h0 (initial value of the state, and the lr rescale)",
    ),
    HyperSpec::runtime("beta1", 0.9, Rule::UnitHalfOpen, "gradient momentum"),
    HyperSpec::runtime("beta2", 0.99999, Rule::UnitHalfOpen, "Hessian EMA coefficient"),
    HyperSpec::runtime(
        "weight_decay",
        1e-4,
        Rule::NonNegative,
        "delta, prior precision per example",
    ),
    HyperSpec::structural(
        "mc_samples",
        1.0,
        Rule::Count { max: MAX_SAMPLES },
        "MC samples per step (forward/backward passes)",
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
];

/// IVON (`ivon`).
#[derive(Clone, Debug)]
pub struct Ivon {
    hyper: Hyper,
    noise: NoiseSource,
}

impl Default for Ivon {
    fn default() -> Self {
        Self::new()
    }
}

impl Ivon {
    pub fn new() -> Self {
        Ivon {
            hyper: Hyper::new("ivon", SPECS),
            noise: NoiseSource::Philox,
        }
    }

    fn samples(&self) -> Result<usize, OptimError> {
        Ok(self.hyper.get("mc_samples")? as usize)
    }
}

/// Label of MC sample k: `""` for the first, `sample<k>` after.
pub(crate) fn sample_label(k: usize) -> String {
    if k == 0 {
        String::new()
    } else {
        format!("sample{k}")
    }
}

/// σ = 1/√(ess·(h+δ)).
pub(crate) fn sigma(b: &GraphBuilder, o: &'static str, h: &Tensor) -> Result<Tensor, OptimError> {
    let prec = &(h + &f(b, o, "delta")?) * &f(b, o, "ess")?;
    Ok(prec.sqrt().recip())
}

/// The reparameterisation Hessian sample ĥ = (mean(σz·g)·(h+δ))·ess, with the h used
/// for sampling.
pub(crate) fn hess_sample(b: &GraphBuilder, o: &'static str, h: &Tensor, nxg: &Tensor) -> Result<Tensor, OptimError> {
    Ok(&(nxg * &(h + &f(b, o, "delta")?)) * &f(b, o, "ess")?)
}

/// The IVON update of parameter `p` (= m) from a gradient estimate ĝ and Hessian sample ĥ.
pub(crate) fn ivon_update(
    b: &GraphBuilder,
    o: &'static str,
    p: &ParamRef,
    mom: &Tensor,
    h: &Tensor,
    ghat: &Tensor,
    hhat: &Tensor,
) -> Result<(), OptimError> {
    let s = |n: &str| f(b, o, n);
    let m = &p.tensor;
    let delta = s("delta")?;
    let mom_new = &(mom * &s("beta1")?) + &(ghat * &s("one_minus_beta1")?);
    let diff = h - hhat;
    let correction = &(&diff.square() * &s("c2")?) / &(h + &delta);
    let h_new = &(&(h * &s("beta2")?) + &(hhat * &s("one_minus_beta2")?)) + &correction;
    let step = &(&(&mom_new / &s("debias")?) + &(m * &delta)) / &(&h_new + &delta);
    let clip = s("clip")?;
    let clipped = step.maximum(clip.neg()).minimum(&clip);
    let m_new = m - &(&clipped * &s("lr_eff")?);
    b.update(mom, &mom_new);
    b.update(h, &h_new);
    b.update(m, &m_new);
    Ok(())
}

/// The host scalars of `sigma`, `hess_sample` and `ivon_update` at step t.
pub(crate) fn ivon_scalars(o: &'static str, h: &Hyper, step: u64, rng: bool) -> Result<Vec<(String, f64)>, OptimError> {
    let t = check_step(o, step)?;
    let (lr, h0, b1, b2, wd) = (
        h.get("lr")?,
        h.get("hess_init")?,
        h.get("beta1")?,
        h.get("beta2")?,
        h.get("weight_decay")?,
    );
    let lr_eff = if h.flag("rescale_lr")? { lr * (h0 + wd) } else { lr };
    let debias = if h.flag("debias")? { 1.0 - b1.powf(t) } else { 1.0 };
    let mut v = vec![
        (scalar_name("lr_eff"), lr_eff),
        (scalar_name("debias"), debias),
        (scalar_name("beta1"), b1),
        (scalar_name("one_minus_beta1"), 1.0 - b1),
        (scalar_name("beta2"), b2),
        (scalar_name("one_minus_beta2"), 1.0 - b2),
        (scalar_name("c2"), 0.5 * (1.0 - b2).powi(2)),
        (scalar_name("delta"), wd),
        (scalar_name("ess"), h.get("ess")?),
        (scalar_name("clip"), h.get("clip_radius")?),
    ];
    if rng {
        v.push((scalar_name("seed"), h.get("seed")?));
        v.push((scalar_name("step"), t));
    }
    Ok(v)
}

/// The `ivon.hess` state of `p` (or `<prefix>.hess`), initialised to `hess_init`.
pub(crate) fn hess_state(
    b: &GraphBuilder,
    o: &'static str,
    h: &Hyper,
    p: &ParamRef,
    prefix: &str,
) -> Result<Tensor, OptimError> {
    state(b, o, p, &format!("{prefix}.hess"), Init::Constant(h.get("hess_init")?))
}

impl Optimizer for Ivon {
    fn name(&self) -> &'static str {
        "ivon"
    }
    fn hyper(&self) -> &Hyper {
        &self.hyper
    }
    fn hyper_mut(&mut self) -> &mut Hyper {
        &mut self.hyper
    }
    fn noise_source(&self) -> Option<NoiseSource> {
        Some(self.noise)
    }
    fn set_noise_source(&mut self, source: NoiseSource) -> Result<(), OptimError> {
        self.noise = source;
        Ok(())
    }

    fn eval_points(&self, phase: Phase, b: &GraphBuilder, params: &[ParamRef]) -> Result<Vec<EvalPoint>, OptimError> {
        if phase != Phase::Step {
            return Err(no_refresh(self.name()));
        }
        let o = self.name();
        let mut points = Vec::new();
        for k in 0..self.samples()? {
            let label = sample_label(k);
            let mut thetas = Vec::with_capacity(params.len());
            for p in params {
                let h = hess_state(b, o, &self.hyper, p, "ivon")?;
                let z = noise(b, o, p, self.noise, &label, k as u32, "step")?;
                thetas.push(&p.tensor + &(&sigma(b, o, &h)? * &z));
            }
            points.push(EvalPoint { label, params: thetas });
        }
        Ok(points)
    }

    fn apply(
        &self,
        _phase: Phase,
        b: &GraphBuilder,
        params: &[ParamRef],
        grads: &[Vec<Tensor>],
    ) -> Result<(), OptimError> {
        let o = self.name();
        for (i, p) in params.iter().enumerate() {
            let h = hess_state(b, o, &self.hyper, p, "ivon")?;
            let mom = state(b, o, p, "ivon.momentum", Init::Zeros)?;
            let sig = sigma(b, o, &h)?;
            let mut acc: Option<(Tensor, Tensor)> = None;
            for (k, point) in grads.iter().enumerate() {
                let g = &point[i];
                let z = noise(b, o, p, self.noise, &sample_label(k), k as u32, "step")?;
                let ge = g * &(&sig * &z);
                acc = Some(match acc {
                    None => (g.clone(), ge),
                    Some((gbar, nxg)) => {
                        let n = (k + 1) as f64;
                        (&gbar + &(&(g - &gbar) / n), &nxg + &(&(&ge - &nxg) / n))
                    }
                });
            }
            let (gbar, nxg) = acc.ok_or_else(|| OptimError::Invalid {
                optimizer: o,
                detail: "no gradients were given".into(),
            })?;
            let hhat = hess_sample(b, o, &h, &nxg)?;
            ivon_update(b, o, p, &mom, &h, &gbar, &hhat)?;
        }
        Ok(())
    }

    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError> {
        self.check()?;
        ivon_scalars(self.name(), &self.hyper, step, self.noise == NoiseSource::Philox)
    }
}
