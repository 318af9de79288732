//! What experiment `convex` writes: `results-convex.json` (every curve, the solver record,
//! the settings), `results-convex-summary.md` (the tables of docs/results.md) and the SVG
//! figures `results-convex-<problem>.svg` (all optimizers) and
//! `results-convex-svrh-<problem>.svg`. Owns aggregation over seeds and formatting only.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{json, Value as Json};

use super::runs::Curve;
use super::svg::{self, Panel, Series, COLORS};
use super::{Config, ProblemResult, Selection};
use crate::experiment::ExperimentOptions;

/// Suboptimality values are clamped to this for logs and plots (F is evaluated in f64;
/// below ~1e-14 differences are rounding).
pub const FLOOR: f64 = 1e-16;

/// Thresholds of the "time to reach" columns.
const THRESHOLDS: &[f64] = &[1e-4, 1e-8];

fn curve_json(c: &Curve) -> Json {
    json!({
        "label": c.label,
        "lr": c.lr,
        "seed": c.seed,
        "diverged": c.diverged,
        "seconds": c.seconds,
        "compile_seconds": c.compile_seconds,
        "refreshes": c.refreshes.iter().map(|r| [r.0, r.1]).collect::<Vec<_>>(),
        "epoch": c.points.iter().map(|p| p.epoch).collect::<Vec<_>>(),
        "grad_evals": c.points.iter().map(|p| p.grad_evals).collect::<Vec<_>>(),
        "subopt": c.points.iter().map(|p| p.subopt).collect::<Vec<_>>(),
    })
}

fn selection_json(s: &Selection) -> Json {
    json!({
        "label": s.label,
        "best_lr": s.best_lr,
        "grid": s.grid.iter().map(curve_json).collect::<Vec<_>>(),
        "seeds": s.seeds.iter().map(curve_json).collect::<Vec<_>>(),
    })
}

/// (epoch, grad_evals, subopt) points and (start, end) refresh intervals.
type MeanCurve = (Vec<(f64, f64, f64)>, Vec<(f64, f64)>);

/// The geometric mean over the seeds that ran to the end (all points aligned), as
/// (epoch, grad_evals, subopt) triples; the seeds' refreshes come from the first one.
fn mean_curve(s: &Selection) -> Option<MeanCurve> {
    let full: Vec<&Curve> = s.seeds.iter().filter(|c| c.diverged.is_none()).collect();
    let use_: Vec<&Curve> = if full.is_empty() {
        s.seeds.iter().max_by_key(|c| c.points.len()).into_iter().collect()
    } else {
        full
    };
    let first = use_.first()?;
    let len = use_.iter().map(|c| c.points.len()).min()?;
    let pts = (0..len)
        .map(|i| {
            let logs: f64 = use_.iter().map(|c| c.points[i].subopt.max(FLOOR).log10()).sum::<f64>() / use_.len() as f64;
            (first.points[i].epoch, first.points[i].grad_evals, 10f64.powf(logs))
        })
        .collect();
    Some((pts, first.refreshes.clone()))
}

/// Series vs epochs and vs gradient evaluations (refresh passes drawn as flat segments
/// ending in a marker).
fn series_pair(s: &Selection, color: &'static str, dashed: bool) -> Option<(Series, Series)> {
    let (pts, refreshes) = mean_curve(s)?;
    let by_epoch = Series {
        label: format!("{} ({})", s.label, short(s.best_lr)),
        color,
        points: pts.iter().map(|p| (p.0, p.2)).collect(),
        markers: Vec::new(),
        dashed,
    };
    let mut by_evals = Vec::new();
    let mut markers = Vec::new();
    let mut r = refreshes.iter().peekable();
    let mut last = pts.first().map(|p| p.2).unwrap_or(1.0);
    for p in &pts {
        while let Some(&&(start, end)) = r.peek() {
            if p.1 > start {
                by_evals.push((end, last));
                markers.push((end, last));
                r.next();
            } else {
                break;
            }
        }
        by_evals.push((p.1, p.2));
        last = p.2;
    }
    let by_grad = Series {
        label: by_epoch.label.clone(),
        color,
        points: by_evals,
        markers,
        dashed,
    };
    Some((by_epoch, by_grad))
}

fn short(v: f64) -> String {
    format!("{v}")
}

fn figure(path: &std::path::Path, title: &str, sels: &[(&Selection, bool)], epochs: usize, note: &str) -> Result<()> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (i, (s, dashed)) in sels.iter().enumerate() {
        if let Some((x, y)) = series_pair(s, COLORS[i % COLORS.len()], *dashed) {
            a.push(x);
            b.push(y);
        }
    }
    let panels = [
        Panel {
            title: "suboptimality vs epochs".into(),
            x_label: "epochs of inner steps (dashed: outer full-gradient passes)".into(),
            y_label: "F(θ) − f*".into(),
            series: a,
            vlines: (1..epochs).map(|e| e as f64).collect(),
            y_floor: FLOOR,
        },
        Panel {
            title: "suboptimality vs gradient evaluations".into(),
            x_label: "per-example gradient evaluations (○: end of a full pass)".into(),
            y_label: "F(θ) − f*".into(),
            series: b,
            vlines: Vec::new(),
            y_floor: FLOOR,
        },
    ];
    svg::write(path, title, &panels, note).with_context(|| format!("writing {}", path.display()))
}

/// Median (over seeds) of the first epoch / gradient-evaluation count with F − f* ≤ thr.
fn reach(s: &Selection, thr: f64) -> (Option<f64>, Option<f64>) {
    let mut e: Vec<f64> = Vec::new();
    let mut g: Vec<f64> = Vec::new();
    for c in &s.seeds {
        match c.points.iter().find(|p| p.subopt <= thr) {
            Some(p) => {
                e.push(p.epoch);
                g.push(p.grad_evals);
            }
            None => {
                e.push(f64::INFINITY);
                g.push(f64::INFINITY);
            }
        }
    }
    let med = |mut v: Vec<f64>| -> Option<f64> {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().filter(|x| x.is_finite())
    };
    (med(e), med(g))
}

fn fmt_reach(v: Option<f64>) -> String {
    match v {
        Some(x) if x >= 1e4 => format!("{:.0}k", x / 1e3),
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "not reached".into(),
    }
}

fn table(out: &mut String, sels: &[&Selection], seeds: usize) {
    let _ = writeln!(
        out,
        "| method | lr (ρ for SVRH) | final F−f*, geo-mean of {seeds} seeds [min, max] | epochs to 1e-4 | epochs to 1e-8 | grad evals to 1e-8 | s per run |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for s in sels {
        let finals: Vec<f64> = s.seeds.iter().map(|c| c.final_subopt()).collect();
        let geo = 10f64.powf(finals.iter().map(|v| v.max(FLOOR).log10()).sum::<f64>() / finals.len().max(1) as f64);
        let lo = finals.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = finals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let div = s.seeds.iter().filter(|c| c.diverged.is_some()).count();
        let secs = s.seeds.iter().map(|c| c.seconds).sum::<f64>() / s.seeds.len().max(1) as f64;
        let (e4, _) = reach(s, THRESHOLDS[0]);
        let (e8, g8) = reach(s, THRESHOLDS[1]);
        let _ = writeln!(
            out,
            "| {} | {} | {:.2e} [{:.1e}, {:.1e}]{} | {} | {} | {} | {:.1} |",
            s.label,
            if s.grid.iter().all(|c| c.diverged.is_some()) {
                "all diverged".to_string()
            } else {
                format!("{}", s.best_lr)
            },
            geo,
            lo,
            hi,
            if div > 0 {
                format!(" ({div} diverged)")
            } else {
                String::new()
            },
            fmt_reach(e4),
            fmt_reach(e8),
            fmt_reach(g8),
            secs
        );
    }
}

fn grid_line(out: &mut String, s: &Selection) {
    let cells: Vec<String> = s
        .grid
        .iter()
        .map(|c| match &c.diverged {
            Some(_) => format!("{}: diverged", c.lr),
            None => format!("{}: {:.1e}", c.lr, c.final_subopt()),
        })
        .collect();
    let _ = writeln!(out, "- {}: {}", s.label, cells.join(", "));
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unavailable".into())
}

/// Write the JSON, the summary and the figures; returns their paths.
pub fn write_all(
    results: &[ProblemResult],
    cfg: &Config,
    opts: &ExperimentOptions,
    seconds: f64,
) -> Result<Vec<PathBuf>> {
    let dir = &opts.out_dir;
    let mut files = Vec::new();
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "<!-- generated by `kiln experiment convex{}`; total {seconds:.0} s; load average at the end: {} -->\n",
        if opts.quick { " --quick" } else { "" },
        loadavg()
    );
    let mut problems_json = Vec::new();
    for r in results {
        let p = &r.problem;
        let s = &r.solution;
        problems_json.push(json!({
            "name": p.name,
            "description": p.description,
            "n": p.n,
            "features": p.features,
            "classes": p.classes,
            "dim": p.dim(),
            "lambda": p.lambda,
            "batch": p.batch,
            "epochs": r.epochs,
            "solver": {
                "method": "damped Newton, explicit f64 Hessian, Cholesky",
                "f_star": s.f_star,
                "grad_norm": s.grad_norm,
                "gap_bound": s.gap_bound,
                "iterations": s.iterations,
                "seconds": s.seconds,
                "history": s.history,
                "interpreter_objective": r.interp_objective,
                "interpreter_grad_norm": r.interp_grad_norm,
            },
            "optimizers": r.optimizers.iter().map(selection_json).collect::<Vec<_>>(),
            "svrh": r.svrh.iter().map(selection_json).collect::<Vec<_>>(),
            "svrh_shift_repairs": r.svrh_counts.repairs,
            "svrh_safeguards": r.svrh_counts.safeguards,
        }));

        let _ = writeln!(
            summary,
            "### {} — {}\n\nn = {}, d = {} parameters, batch {}, λ = {}, {} epochs. Newton: f* = {:.12}, {} iterations, \
             ‖∇F(θ*)‖ = {:.1e} (so F(θ*) − f* ≤ {:.0e}); kiln's autodiff graph on the f64 interpreter at θ*: \
             F = {:.12}, ‖∇F‖ = {:.1e}.\n",
            p.name,
            p.description,
            p.n,
            p.dim(),
            p.batch,
            p.lambda,
            r.epochs,
            s.f_star,
            s.iterations,
            s.grad_norm,
            s.gap_bound.max(1e-300),
            r.interp_objective,
            r.interp_grad_norm
        );
        let sels: Vec<&Selection> = r.optimizers.iter().chain(&r.svrh).collect();
        table(&mut summary, &sels, cfg.seeds);
        let _ = writeln!(summary, "\nLearning-rate grid (seed 0, final F − f*):\n");
        for s in &sels {
            grid_line(&mut summary, s);
        }
        if !r.svrh.is_empty() {
            let _ = writeln!(
                summary,
                "\nSVRH fallbacks over all its runs: {} solves needed a shift, {} safeguarded steps\n",
                r.svrh_counts.repairs, r.svrh_counts.safeguards
            );
        }
        let _ = writeln!(summary);

        let path = dir.join(format!("results-convex-{}.svg", p.name));
        let sel: Vec<(&Selection, bool)> = r.optimizers.iter().map(|s| (s, s.label.contains("ess="))).collect();
        let note = format!(
            "{}: geometric mean of {} seeds at the best lr of each grid; θ0 = 0; refresh = full pass at every epoch start",
            p.name, cfg.seeds
        );
        figure(
            &path,
            &format!("Logistic regression on {} (d = {})", p.name, p.dim()),
            &sel,
            r.epochs,
            &note,
        )?;
        files.push(path);
        if !r.svrh.is_empty() {
            let path = dir.join(format!("results-convex-svrh-{}.svg", p.name));
            let mut sel: Vec<(&Selection, bool)> = r.svrh.iter().map(|s| (s, false)).collect();
            for s in &r.optimizers {
                if s.label == "svrg" || s.label == "ivon-poco (shared z, no prox)" {
                    sel.push((s, true));
                }
            }
            figure(
                &path,
                &format!("SVRH on {} (explicit f64 Hessians, d = {})", p.name, p.dim()),
                &sel,
                r.epochs,
                &note,
            )?;
            files.push(path);
        }
    }
    let json = json!({
        "experiment": "convex",
        "quick": opts.quick,
        "seeds": cfg.seeds,
        "evals_per_epoch": cfg.evals_per_epoch,
        "seconds": seconds,
        "loadavg_end": loadavg(),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "problems": problems_json,
    });
    let path = dir.join("results-convex.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    files.push(path);
    let path = dir.join("results-convex-summary.md");
    std::fs::write(&path, summary).with_context(|| format!("writing {}", path.display()))?;
    files.push(path);
    Ok(files)
}
