//! One stochastic-optimizer run on a convex problem: kiln's compiled training step
//! (`CompiledTask`, the same path as `kiln train`, f32 kernels) driven epoch by epoch, with
//! the suboptimality F(θ) − f* measured in f64 on the FULL training split several times
//! per epoch. Owns the optimizer settings of the experiment, the θ₀ = 0 start and the
//! gradient-evaluation count; the optimizers' maths is `kiln_models::optim`.
//!
//! Every optimizer minimises the same F (see `problems`): `weight_decay = λ` is a coupled
//! L2 term `g + λθ` for SGD, Adam and SVRG, and IVON's / IVON-PoCo's δ, the prior
//! precision per example, whose gradient δ·m is added at the mean (so with the weight noise
//! switched off their fixed point is ∇F(m) = 0; with noise it is the minimiser of
//! `E_q[ℓ̄] + (δ/2)‖m‖²`, which differs from θ* by a small variational bias).
//!
//! Gradient evaluations are per-example gradients: a step on a batch of b costs b (SGD,
//! Adam, IVON) or 2b (SVRG, IVON-PoCo: the current point and the anchor, same batch); the
//! outer refresh of SVRG / IVON-PoCo at the start of every epoch costs n (a full pass).

use std::time::Instant;

use crate::train_task::CompiledTask;
use anyhow::{anyhow, Result};
use kiln_models::nets;
use kiln_models::optim;
use kiln_runtime::compile::CompileOptions;
use kiln_runtime::data::Batch;
use kiln_runtime::train::TrainTask;

use super::problems::Problem;

/// One optimizer configuration of the experiment.
#[derive(Clone, Copy, Debug)]
pub struct OptSpec {
    /// Label in tables and plots.
    pub label: &'static str,
    /// `kiln_models::optim::by_name` name.
    pub optimizer: &'static str,
    /// Learning rates tried (the best by final suboptimality is kept).
    pub lrs: &'static [f64],
    /// Whether it runs the outer refresh (full pass at every epoch start).
    pub refresh: bool,
    /// Extra hyperparameters (besides lr, weight_decay, ess, seed).
    pub extra: &'static [(&'static str, f64)],
    /// IVON / IVON-PoCo: ess = this × n (1: the usual choice; larger: less weight noise).
    pub ess_factor: f64,
}

/// The optimizers compared (the PoCo paper's Figure 3 set plus SGD and Adam), and
/// IVON-PoCo variants: the same z for θ_in and θ_out (U2 of the research note), without
/// the Hessian prox term of the gradient (U1), and IVON / IVON-PoCo with 100× the
/// effective sample size (10× smaller weight noise).
pub const OPTIMIZERS: &[OptSpec] = &[
    OptSpec {
        label: "sgd",
        optimizer: "sgd",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: false,
        extra: &[],
        ess_factor: 1.0,
    },
    OptSpec {
        label: "adam",
        optimizer: "adam",
        lrs: &[0.1, 0.03, 0.01, 0.003, 0.001],
        refresh: false,
        extra: &[],
        ess_factor: 1.0,
    },
    OptSpec {
        label: "ivon",
        optimizer: "ivon",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: false,
        extra: &[],
        ess_factor: 1.0,
    },
    OptSpec {
        label: "svrg",
        optimizer: "svrg",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: true,
        extra: &[("alpha", 1.0)],
        ess_factor: 1.0,
    },
    OptSpec {
        label: "ivon-poco",
        optimizer: "ivon-poco",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: true,
        extra: &[("alpha", 1.0)],
        ess_factor: 1.0,
    },
    OptSpec {
        label: "ivon-poco (shared z)",
        optimizer: "ivon-poco",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: true,
        extra: &[("alpha", 1.0), ("shared_noise", 1.0)],
        ess_factor: 1.0,
    },
    OptSpec {
        label: "ivon (ess=100n)",
        optimizer: "ivon",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: false,
        extra: &[],
        ess_factor: 100.0,
    },
    OptSpec {
        label: "ivon-poco (shared z, no prox)",
        optimizer: "ivon-poco",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: true,
        extra: &[("alpha", 1.0), ("shared_noise", 1.0), ("prox", 0.0)],
        ess_factor: 1.0,
    },
    OptSpec {
        label: "ivon-poco (shared z, no prox, ess=100n)",
        optimizer: "ivon-poco",
        lrs: &[1.0, 0.3, 0.1, 0.03, 0.01],
        refresh: true,
        extra: &[("alpha", 1.0), ("shared_noise", 1.0), ("prox", 0.0)],
        ess_factor: 100.0,
    },
];

/// One measurement of a run.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Epochs of inner steps done (fractional).
    pub epoch: f64,
    /// Per-example gradient evaluations so far (refreshes included).
    pub grad_evals: f64,
    /// F(θ) − f*, in f64 on the full training split.
    pub subopt: f64,
}

/// The record of one run.
#[derive(Clone, Debug)]
pub struct Curve {
    pub label: String,
    pub lr: f64,
    pub seed: u64,
    pub points: Vec<Point>,
    /// Gradient-evaluation counts at the start and end of each outer refresh.
    pub refreshes: Vec<(f64, f64)>,
    /// Why the run stopped early (non-finite loss or objective), if it did.
    pub diverged: Option<String>,
    pub seconds: f64,
    pub compile_seconds: f64,
}

impl Curve {
    /// The score used to pick a learning rate: mean log10 suboptimality (clamped at
    /// 1e-15, the f64 evaluation floor) over the points of the second half of the run, so
    /// both the level reached and how early it is reached count (+inf when the run
    /// diverged).
    pub fn score(&self) -> f64 {
        if self.diverged.is_some() || self.points.is_empty() {
            return f64::INFINITY;
        }
        let last = self.points.last().map(|p| p.epoch).unwrap_or(0.0);
        let tail: Vec<f64> = self
            .points
            .iter()
            .filter(|p| p.epoch >= last / 2.0)
            .map(|p| p.subopt.max(1e-15).log10())
            .collect();
        tail.iter().sum::<f64>() / tail.len().max(1) as f64
    }

    pub fn final_subopt(&self) -> f64 {
        self.points.last().map(|p| p.subopt).unwrap_or(f64::NAN)
    }
}

/// Settings of one run.
#[derive(Clone, Copy, Debug)]
pub struct RunSettings {
    pub epochs: usize,
    /// Suboptimality measurements per epoch (evenly spaced in steps).
    pub evals_per_epoch: usize,
    pub lr: f64,
    pub seed: u64,
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{e}")
}

/// Build the optimizer of `spec` for problem `p`.
pub fn build_optimizer(spec: &OptSpec, p: &Problem, lr: f64, seed: u64) -> Result<Box<dyn optim::Optimizer>> {
    let mut opt = optim::by_name(spec.optimizer).map_err(err)?;
    opt.set("lr", lr).map_err(err)?;
    opt.set("weight_decay", p.lambda).map_err(err)?;
    if matches!(spec.optimizer, "ivon" | "ivon-poco") {
        opt.set("ess", spec.ess_factor * p.n as f64).map_err(err)?;
        opt.set("seed", seed as f64).map_err(err)?;
    }
    for &(name, value) in spec.extra {
        opt.set(name, value).map_err(err)?;
    }
    Ok(opt)
}

/// The parameters of the compiled step as one f64 vector in the layout of `problems`.
fn read_theta(task: &CompiledTask) -> Result<Vec<f64>> {
    let exe = task.step_executable();
    let w = exe.get("logreg.weight").map_err(err)?;
    let b = exe.get("logreg.bias").map_err(err)?;
    Ok(w.data.iter().chain(&b.data).copied().collect())
}

/// Run `spec` on `p` from θ = 0; `f_star` is the reference minimum.
pub fn run(spec: &OptSpec, p: &Problem, f_star: f64, s: &RunSettings) -> Result<Curve> {
    let started = Instant::now();
    let model = nets::by_name("logreg", &[p.features], p.classes).map_err(err)?;
    let opt = build_optimizer(spec, p, s.lr, s.seed)?;
    let mut task = CompiledTask::new(model.as_ref(), opt, p.batch, &CompileOptions::default()).map_err(err)?;
    let compile_seconds = task.compile_seconds();
    // θ₀ = 0 (a convex problem needs no random init); optimizer state as initialised.
    let mut ck = task.save_state().map_err(err)?;
    for name in ["logreg.weight", "logreg.bias"] {
        let t = ck
            .tensors
            .get_mut(name)
            .ok_or_else(|| anyhow!("the logreg step has no parameter `{name}`"))?;
        t.data.iter_mut().for_each(|v| *v = 0.0);
    }
    task.load_state(&ck).map_err(err)?;

    let steps_per_epoch = p.n / p.batch;
    let every = (steps_per_epoch / s.evals_per_epoch.max(1)).max(1);
    let cost_per_step = if spec.refresh { 2 * p.batch } else { p.batch } as f64;
    let mut curve = Curve {
        label: spec.label.to_string(),
        lr: s.lr,
        seed: s.seed,
        points: vec![Point {
            epoch: 0.0,
            grad_evals: 0.0,
            subopt: p.objective(&read_theta(&task)?) - f_star,
        }],
        refreshes: Vec::new(),
        diverged: None,
        seconds: 0.0,
        compile_seconds,
    };
    let mut grad_evals = 0.0;
    let mut step: u64 = 0;
    let mut batch = Batch::default();
    'epochs: for epoch in 1..=s.epochs {
        task.on_epoch_start(&p.train, p.batch, s.seed, epoch).map_err(err)?;
        if spec.refresh {
            curve.refreshes.push((grad_evals, grad_evals + p.n as f64));
            grad_evals += p.n as f64;
        }
        let mut batches = p.train.train_batches(p.batch, s.seed, epoch as u64)?;
        let mut in_epoch = 0;
        while batches.next_into(&mut batch) {
            step += 1;
            in_epoch += 1;
            let loss = task.train_step(&batch, step).map_err(err)?;
            grad_evals += cost_per_step;
            if !loss.is_finite() {
                curve.diverged = Some(format!("non-finite training loss at step {step}"));
                break 'epochs;
            }
            if in_epoch % every == 0 || in_epoch == steps_per_epoch {
                let sub = p.objective(&read_theta(&task)?) - f_star;
                if !sub.is_finite() || sub > 1e6 {
                    curve.diverged = Some(format!("objective {sub:e} above f* at step {step}"));
                    break 'epochs;
                }
                let frac = (epoch - 1) as f64 + in_epoch as f64 / steps_per_epoch as f64;
                if curve.points.last().map(|q| q.epoch) != Some(frac) {
                    curve.points.push(Point {
                        epoch: frac,
                        grad_evals,
                        subopt: sub,
                    });
                }
            }
        }
    }
    curve.seconds = started.elapsed().as_secs_f64();
    Ok(curve)
}
