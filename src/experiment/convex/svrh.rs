//! SVRH: the Newton-like posterior-correction method of research note ivon_poco.md §3.5
//! (full-Gaussian PoCo, "stochastic variance-reduced Hessian"), run on the host in f64
//! with explicit Hessians. Owns the SVRH iteration; the problem maths is `problems`, the
//! dense solves are `solver`.
//!
//! Form used (§3.5 divided by N, per-example units, prior precision λ, delta method
//! `E_q[∇ℓ] ≈ ∇ℓ(m)`, `E_q[∇²ℓ] ≈ ∇²ℓ(m)`, i.e. with the weight noise switched off as
//! SVRG is PoCo's noise-free isotropic case):
//!
//! ```text
//! refresh (start of every epoch): m_out ← m;  ḡ_out ← ∇ℓ̄(m_out);  H̄_out ← ∇²ℓ̄(m_out)   (full pass)
//!                                  first refresh only: s ← λI + H̄_out
//! inner step on batch B:
//!   s ← (1−ρ)s + ρ[λI + H_B(m) − α(H_B(m_out) − H̄_out)]
//!   ĝ = λm + g_B(m) − α(g_B(m_out) − ḡ_out) + α(H̄_out − H_B(m_out))(m − m_out)
//!   m ← m − ρ s⁻¹ ĝ
//! ```
//!
//! α = 1 is SVRH; α = 0 is a stochastic (online) Newton method without correction, the
//! baseline that shows what the correction buys. The Hessians are explicit d × d
//! matrices from the closed form of `problems` (d = 28 and 62 here), checked against
//! kiln's double-backward Hessian–vector products in `tests/experiment_convex.rs`.
//! Costs are counted like SVRG's: 2b per-example (gradient, Hessian) evaluations per
//! inner step, n per refresh. If the corrected `s` is not positive definite (possible
//! far from m_out when α = 1), λ·2^k·I is added to it for the solve until it is, and the
//! number of such repairs is reported. The *safeguarded* variant instead replaces a
//! corrected target `λI + H_B(m) − α(H_B(m_out) − H̄_out)` that is not positive definite
//! by the uncorrected `λI + H_B(m)` for that step (and counts it); the plain variant keeps
//! the corrected target and relies on the shift only.

use std::time::Instant;

use anyhow::Result;

use super::problems::Problem;
use super::runs::{Curve, Point};
use super::solver::{cholesky, cholesky_solve};

/// Settings of one SVRH run.
#[derive(Clone, Copy, Debug)]
pub struct SvrhSettings {
    pub epochs: usize,
    pub evals_per_epoch: usize,
    /// BLR step ρ (for both s and m).
    pub rho: f64,
    /// Correction strength α.
    pub alpha: f64,
    /// Replace a corrected Hessian target that is not positive definite by the
    /// uncorrected one (see the module doc).
    pub safeguard: bool,
    pub seed: u64,
}

/// The step sizes ρ tried.
pub const RHOS: &[f64] = &[1.0, 0.5, 0.2, 0.1, 0.05, 0.02];

/// How often SVRH's fallbacks were used in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SvrhCounts {
    /// Solves that needed a λ·2^k·I shift.
    pub repairs: usize,
    /// Steps whose corrected Hessian target was replaced by the uncorrected one.
    pub safeguards: usize,
}

/// Run SVRH on `p` from m = 0, in the same data order as the compiled optimizers
/// (`Dataset::train_batches` with the same seed).
pub fn run(p: &Problem, f_star: f64, s: &SvrhSettings) -> Result<(Curve, SvrhCounts)> {
    let started = Instant::now();
    let d = p.dim();
    let lam = p.lambda;
    let mut m = vec![0.0; d];
    let mut prec: Vec<f64> = Vec::new();
    let all: Vec<usize> = (0..p.n).collect();
    let steps_per_epoch = p.n / p.batch;
    let every = (steps_per_epoch / s.evals_per_epoch.max(1)).max(1);
    let label = if s.alpha == 0.0 {
        "stochastic newton (alpha=0)".to_string()
    } else if s.safeguard {
        format!("svrh (alpha={}, safeguarded)", s.alpha)
    } else {
        format!("svrh (alpha={})", s.alpha)
    };
    let mut curve = Curve {
        label,
        lr: s.rho,
        seed: s.seed,
        points: vec![Point {
            epoch: 0.0,
            grad_evals: 0.0,
            subopt: p.objective(&m) - f_star,
        }],
        refreshes: Vec::new(),
        diverged: None,
        seconds: 0.0,
        compile_seconds: 0.0,
    };
    let mut grad_evals = 0.0;
    let mut repairs = 0;
    let mut safeguards = 0;
    'epochs: for epoch in 1..=s.epochs {
        // Outer refresh: snapshot and full-batch gradient and Hessian at the anchor.
        let m_out = m.clone();
        let (_, g_out) = p.data_grad(&m_out, &all);
        let h_out = p.data_hessian(&m_out, &all);
        if prec.is_empty() {
            prec = h_out.clone();
            (0..d).for_each(|i| prec[i * d + i] += lam);
        }
        curve.refreshes.push((grad_evals, grad_evals + p.n as f64));
        grad_evals += p.n as f64;

        let batches = p.train.train_batches(p.batch, s.seed, epoch as u64)?;
        let order = batches.order().to_vec();
        for k in 0..steps_per_epoch {
            let rows = &order[k * p.batch..(k + 1) * p.batch];
            let (_, g_in) = p.data_grad(&m, rows);
            let h_in = p.data_hessian(&m, rows);
            let (g_anchor, h_anchor) = if s.alpha != 0.0 {
                (p.data_grad(&m_out, rows).1, p.data_hessian(&m_out, rows))
            } else {
                (vec![0.0; d], vec![0.0; d * d])
            };
            grad_evals += if s.alpha != 0.0 { 2 * p.batch } else { p.batch } as f64;
            let mut target: Vec<f64> = (0..d * d)
                .map(|i| h_in[i] - s.alpha * (h_anchor[i] - h_out[i]) + if i % (d + 1) == 0 { lam } else { 0.0 })
                .collect();
            // Safeguard: a corrected Hessian estimate that is not positive definite (far
            // from the anchor) is replaced by the uncorrected one, λI + H_B(m).
            if s.safeguard && s.alpha != 0.0 && cholesky(&target, d).is_none() {
                safeguards += 1;
                for (i, t) in target.iter_mut().enumerate() {
                    *t = h_in[i] + if i % (d + 1) == 0 { lam } else { 0.0 };
                }
            }
            for (pv, tv) in prec.iter_mut().zip(&target) {
                *pv = (1.0 - s.rho) * *pv + s.rho * tv;
            }
            let mut ghat: Vec<f64> = (0..d)
                .map(|i| lam * m[i] + g_in[i] - s.alpha * (g_anchor[i] - g_out[i]))
                .collect();
            if s.alpha != 0.0 {
                for (i, gv) in ghat.iter_mut().enumerate() {
                    let row = i * d;
                    let corr: f64 = (0..d)
                        .map(|j| (h_out[row + j] - h_anchor[row + j]) * (m[j] - m_out[j]))
                        .sum();
                    *gv += s.alpha * corr;
                }
            }
            let mut shift = 0.0;
            let factor = loop {
                let mut a = prec.clone();
                (0..d).for_each(|i| a[i * d + i] += shift);
                if let Some(l) = cholesky(&a, d) {
                    break l;
                }
                repairs += 1;
                shift = if shift == 0.0 { lam } else { shift * 2.0 };
                if shift > 1e12 {
                    curve.diverged = Some(format!("precision not repairable at epoch {epoch}, step {k}"));
                    break 'epochs;
                }
            };
            let dir = cholesky_solve(&factor, d, &ghat);
            m.iter_mut().zip(&dir).for_each(|(mv, dv)| *mv -= s.rho * dv);
            let in_epoch = k + 1;
            if in_epoch % every == 0 || in_epoch == steps_per_epoch {
                let sub = p.objective(&m) - f_star;
                if !sub.is_finite() || sub > 1e6 {
                    curve.diverged = Some(format!("objective {sub:e} above f* at epoch {epoch}"));
                    break 'epochs;
                }
                curve.points.push(Point {
                    epoch: (epoch - 1) as f64 + in_epoch as f64 / steps_per_epoch as f64,
                    grad_evals,
                    subopt: sub,
                });
            }
        }
    }
    curve.seconds = started.elapsed().as_secs_f64();
    Ok((curve, SvrhCounts { repairs, safeguards }))
}
