//! Experiment `convex` (PoCo paper, its Figure 3 analogue): IVON-PoCo vs IVON vs SVRG vs
//! SGD vs Adam on L2-regularised logistic regression, measured as suboptimality
//! F(θ) − f* against a Newton reference minimum, plus SVRH (the Newton-like posterior
//! correction, research note ivon_poco.md §3.5) on the small problems. Owns the
//! orchestration: which problems, learning-rate grids, seeds, the selection of the best
//! learning rate, and what is written (JSON, SVG plots, a markdown summary).
//!
//! Module map: `problems` (data, objective, f64 gradient/Hessian, the kiln objective
//! graph), `solver` (Newton, Cholesky), `runs` (the compiled optimizers), `svrh`, `svg`
//! (plots), `report` (JSON, tables, figures).
//!
//! Protocol: every run starts at θ = 0. Each optimizer's learning rate is chosen from its
//! grid by the mean log10 suboptimality over the second half of the run with seed 0; the chosen rate
//! is then rerun with seeds 1..S−1 (data order, and the weight noise of IVON / IVON-PoCo).
//! The outer refresh of SVRG / IVON-PoCo / SVRH is a full pass at the start of every epoch
//! (an inner loop of one epoch of mini-batch steps).

pub mod problems;
mod report;
pub mod runs;
pub mod solver;
pub mod svg;
pub mod svrh;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::ExperimentOptions;
use problems::Problem;
use runs::{Curve, RunSettings, OPTIMIZERS};
use solver::Solution;

/// What one run of the experiment does.
#[derive(Clone, Debug)]
pub struct Config {
    /// (problem, epochs) pairs.
    pub problems: Vec<(&'static str, usize)>,
    pub evals_per_epoch: usize,
    pub seeds: usize,
    /// Only the middle learning rate of each grid (quick mode).
    pub single_lr: bool,
    /// Problems with at most this many parameters also run SVRH.
    pub svrh_max_dim: usize,
}

impl Config {
    pub fn new(opts: &ExperimentOptions) -> Config {
        if opts.quick {
            Config {
                problems: vec![("heart-scale", 3)],
                evals_per_epoch: 3,
                seeds: opts.seeds.unwrap_or(1).max(1),
                single_lr: true,
                svrh_max_dim: 100,
            }
        } else {
            Config {
                problems: vec![("heart-scale", 60), ("breast-cancer", 60), ("fashion-0v6", 40)],
                evals_per_epoch: 4,
                seeds: opts.seeds.unwrap_or(3).max(1),
                single_lr: false,
                svrh_max_dim: 100,
            }
        }
    }
}

/// Results of one problem.
pub struct ProblemResult {
    pub problem: Problem,
    pub solution: Solution,
    /// `‖∇F(θ*)‖` and `F(θ*)` computed by kiln's autodiff graph on the f64 interpreter.
    pub interp_grad_norm: f64,
    pub interp_objective: f64,
    pub epochs: usize,
    /// Every optimizer run: (label, grid runs with seed 0, chosen lr, runs of the chosen lr).
    pub optimizers: Vec<Selection>,
    /// SVRH and its α = 0 baseline (empty when the problem is too large).
    pub svrh: Vec<Selection>,
    /// Fallbacks used over all SVRH runs.
    pub svrh_counts: svrh::SvrhCounts,
}

/// The learning-rate grid of one method and the runs of the chosen rate.
pub struct Selection {
    pub label: String,
    pub grid: Vec<Curve>,
    pub best_lr: f64,
    pub seeds: Vec<Curve>,
}

fn pick(label: &str, grid: Vec<Curve>) -> Selection {
    let best = grid
        .iter()
        .min_by(|a, b| a.score().total_cmp(&b.score()))
        .map(|c| c.lr)
        .unwrap_or(f64::NAN);
    Selection {
        label: label.to_string(),
        seeds: grid.iter().filter(|c| c.lr == best).cloned().collect(),
        grid,
        best_lr: best,
    }
}

fn progress(problem: &str, c: &Curve) {
    eprintln!(
        "[convex] {problem:<14} {:<28} lr {:<6} seed {} : final F-f* {:.3e}  ({:.1} s, compile {:.1} s){}",
        c.label,
        c.lr,
        c.seed,
        c.final_subopt(),
        c.seconds,
        c.compile_seconds,
        c.diverged
            .as_deref()
            .map(|d| format!("  DIVERGED: {d}"))
            .unwrap_or_default()
    );
}

/// Solve, check and run everything on one problem.
fn run_problem(name: &'static str, epochs: usize, cfg: &Config, opts: &ExperimentOptions) -> Result<ProblemResult> {
    let p = Problem::load(name, opts.data_dir.as_deref(), problems::default_lambda(name))?;
    let solution = solver::newton(&p)?;
    let og = problems::objective_graph(&p)?;
    let zero = vec![0.0; p.dim()];
    let check = problems::interpret(&p, &og, &solution.theta, &zero)?;
    let interp_grad_norm = check.grad.iter().map(|v| v * v).sum::<f64>().sqrt();
    eprintln!(
        "[convex] {name:<14} n {} d {} : Newton f* {:.15} in {} iterations ({:.1} s), |grad| {:.2e} \
         (bound on F-f*: {:.1e}); kiln autodiff on the f64 interpreter: F {:.15}, |grad| {:.2e}",
        p.n,
        p.dim(),
        solution.f_star,
        solution.iterations,
        solution.seconds,
        solution.grad_norm,
        solution.gap_bound,
        check.loss,
        interp_grad_norm
    );
    let f_star = solution.f_star;
    let mut optimizers = Vec::new();
    for spec in OPTIMIZERS {
        let lrs: Vec<f64> = if cfg.single_lr {
            vec![spec.lrs[spec.lrs.len() / 2]]
        } else {
            spec.lrs.to_vec()
        };
        let mut grid = Vec::new();
        for &lr in &lrs {
            let s = RunSettings {
                epochs,
                evals_per_epoch: cfg.evals_per_epoch,
                lr,
                seed: 0,
            };
            let c = runs::run(spec, &p, f_star, &s)?;
            progress(name, &c);
            grid.push(c);
        }
        let mut sel = pick(spec.label, grid);
        for seed in 1..cfg.seeds as u64 {
            let s = RunSettings {
                epochs,
                evals_per_epoch: cfg.evals_per_epoch,
                lr: sel.best_lr,
                seed,
            };
            let c = runs::run(spec, &p, f_star, &s)?;
            progress(name, &c);
            sel.seeds.push(c);
        }
        optimizers.push(sel);
    }
    let mut svrh_sel = Vec::new();
    let mut svrh_counts = svrh::SvrhCounts::default();
    if p.dim() <= cfg.svrh_max_dim {
        for (alpha, safeguard) in [(1.0, false), (1.0, true), (0.0, false)] {
            let rhos: Vec<f64> = if cfg.single_lr {
                vec![svrh::RHOS[3]]
            } else {
                svrh::RHOS.to_vec()
            };
            let mut grid = Vec::new();
            for &rho in &rhos {
                let s = svrh::SvrhSettings {
                    epochs,
                    evals_per_epoch: cfg.evals_per_epoch,
                    rho,
                    alpha,
                    safeguard,
                    seed: 0,
                };
                let (c, r) = svrh::run(&p, f_star, &s)?;
                progress(name, &c);
                svrh_counts.repairs += r.repairs;
                svrh_counts.safeguards += r.safeguards;
                grid.push(c);
            }
            let label = grid[0].label.clone();
            let mut sel = pick(&label, grid);
            for seed in 1..cfg.seeds as u64 {
                let s = svrh::SvrhSettings {
                    epochs,
                    evals_per_epoch: cfg.evals_per_epoch,
                    rho: sel.best_lr,
                    alpha,
                    safeguard,
                    seed,
                };
                let (c, r) = svrh::run(&p, f_star, &s)?;
                progress(name, &c);
                svrh_counts.repairs += r.repairs;
                svrh_counts.safeguards += r.safeguards;
                sel.seeds.push(c);
            }
            svrh_sel.push(sel);
        }
    }
    Ok(ProblemResult {
        problem: p,
        solution,
        interp_grad_norm,
        interp_objective: check.loss,
        epochs,
        optimizers,
        svrh: svrh_sel,
        svrh_counts,
    })
}

/// Run the experiment; returns the files written.
pub fn run(opts: &ExperimentOptions) -> Result<Vec<PathBuf>> {
    let started = Instant::now();
    let cfg = Config::new(opts);
    let mut results = Vec::new();
    for &(name, epochs) in &cfg.problems {
        results.push(run_problem(name, epochs, &cfg, opts)?);
    }
    report::write_all(&results, &cfg, opts, started.elapsed().as_secs_f64())
}
