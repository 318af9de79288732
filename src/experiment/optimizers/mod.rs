//! Experiment `optimizers` (the VSGD paper's central comparison at small scale): VSGD vs
//! Adam, AdamW and SGD with momentum training the MLP on Fashion-MNIST (the full set
//! when installed, else the embedded subset), each optimizer over a small learning-rate
//! sweep × several seeds with the paper's step decay (halve the rate at fixed points of
//! the run). The rate each optimizer is compared at is picked on a validation split
//! held out of the training set; the test split only reports. A conv-net follow-up
//! trains each optimizer once at its selected rate. VSGD's per-element effective
//! momentum β₁ = B_h/(B_g + B_h) is recorded over training.
//!
//! Writes into the output folder: `results.json` (every run's curves, the sweep, the
//! selection, the β₁ histograms), `summary.md` (the tables), `curves.png`, `sweep.png`,
//! `beta1.png`. `--quick` runs a CI-sized smoke version (a 2,000-example slice, two
//! epochs, one seed) that checks the pipeline, not the science. Running again into a
//! folder whose `results.json` holds runs of the same configuration and data (e.g. after
//! an interruption) reuses those runs instead of retraining them.
//!
//! Owns the orchestration and the output files; configuration is `plan`, one training
//! run `runner`, statistics and tables `report`, drawing `plots`. Uses only the public
//! library (`CompiledTask`, the runtime's data sets and executables).

pub mod plan;
pub mod plots;
pub mod report;
pub mod runner;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value as Json};

use self::plan::{Plan, Prepared};
use self::report::ArmSummary;
use self::runner::{RunRecord, RunSpec};
use super::ExperimentOptions;

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unavailable".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.2}%", v * 100.0)).unwrap_or_else(|| "—".into())
}

fn progress_line(k: usize, total: usize, r: &RunRecord) -> String {
    let last = r.finished();
    format!(
        "[{k:>2}/{total}] {} {:<12} lr {:<7} seed {}: test {} val {} train loss {}{} ({:.1} s, {} kernels, compile {:.2} s, load {})",
        r.model,
        r.arm,
        r.lr,
        r.seed,
        pct(last.map(|e| e.test_accuracy)),
        pct(last.map(|e| e.val_accuracy)),
        last.map(|e| format!("{:.4}", e.train_loss)).unwrap_or_else(|| "—".into()),
        r.diverged.as_ref().map(|d| format!(" DIVERGED: {d}")).unwrap_or_default(),
        r.wall_seconds,
        r.kernels,
        r.compile_seconds,
        loadavg()
    )
}

fn spec<'a>(plan: &'a Plan, model: &'a str, arm: &'a plan::Arm, lr: f64, seed: u64, epochs: usize) -> RunSpec<'a> {
    RunSpec {
        model,
        arm,
        lr,
        seed,
        epochs,
        batch_size: plan.batch_size,
        decay_at: &plan.decay_at,
        decay_factor: plan.decay_factor,
        beta1_bins: plan.beta1_bins,
    }
}

/// The configuration part of `results.json` (also the key for reusing finished runs).
fn config_json(p: &Plan) -> Json {
    json!({
        "model": p.model, "epochs": p.epochs, "batch_size": p.batch_size, "seeds": p.seeds,
        "schedule": {"kind": "step_decay", "at_fraction": p.decay_at, "factor": p.decay_factor},
        "val_fraction": p.val_fraction, "conv_epochs": p.conv_epochs,
        "conv_train_examples": p.conv_train_examples,
        "beta1_histogram": {"variable": "log10(1 - beta1)", "min": plan::BETA1_LOG_MIN, "max": 0.0, "bins": p.beta1_bins},
        "arms": p.arms.iter().map(|a| json!({
            "label": a.label, "optimizer": a.optimizer, "lrs": a.lrs,
            "fixed": a.fixed.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Runs finished by an earlier, interrupted invocation with the same configuration and
/// data in the same output folder: (sweep runs, conv runs). Empty when there is none.
fn previous_runs(path: &std::path::Path, plan: &Plan, data: &Prepared) -> (Vec<RunRecord>, Vec<RunRecord>) {
    let Some(prev) = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
    else {
        return (Vec::new(), Vec::new());
    };
    if prev["config"] != config_json(plan) || prev["data"]["description"] != data.description.as_str() {
        return (Vec::new(), Vec::new());
    }
    let read = |v: &Json| -> Vec<RunRecord> {
        v.as_array()
            .map(|a| a.iter().filter_map(RunRecord::from_json).collect())
            .unwrap_or_default()
    };
    (read(&prev["runs"]), read(&prev["conv"]["runs"]))
}

fn take_previous(previous: &mut Vec<RunRecord>, model: &str, arm: &str, lr: f64, seed: u64) -> Option<RunRecord> {
    let i = previous
        .iter()
        .position(|r| r.model == model && r.arm == arm && r.lr == lr && r.seed == seed)?;
    Some(previous.swap_remove(i))
}

/// Everything `results.json` holds.
#[derive(Clone)]
struct Outcome<'a> {
    plan: &'a Plan,
    data: &'a Prepared,
    records: &'a [RunRecord],
    summary: &'a [ArmSummary],
    conv: &'a [RunRecord],
    conv_errors: &'a [(String, String)],
    load_start: String,
    seconds: f64,
    complete: bool,
    /// Runs taken from an earlier, interrupted invocation (their times are their own).
    reused: usize,
}

impl Outcome<'_> {
    fn json(&self) -> Json {
        let p = self.plan;
        json!({
            "experiment": "optimizers",
            "complete": self.complete,
            "quick": p.quick,
            "data": {"dataset": self.data.dataset, "description": self.data.description,
                     "train": self.data.train.len(), "val": self.data.val.len(), "test": self.data.test.len()},
            "config": config_json(p),
            "machine": {"cpu": cpu_model(), "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                        "loadavg_start": self.load_start, "loadavg_end": loadavg()},
            "wall_seconds": self.seconds,
            "reused_runs": self.reused,
            "summary": report::summary_json(self.summary),
            "runs": self.records.iter().map(RunRecord::to_json).collect::<Vec<_>>(),
            "conv": {
                "runs": self.conv.iter().map(RunRecord::to_json).collect::<Vec<_>>(),
                "errors": self.conv_errors.iter().map(|(a, e)| json!({"optimizer": a, "error": e})).collect::<Vec<_>>(),
            },
        })
    }

    fn markdown(&self) -> String {
        let p = self.plan;
        let mut s = format!(
            "# kiln experiment optimizers{}\n\n- data: {}\n- model: {} (784-256-256-10), batch {}, {} epochs, step decay ×{} at {:?} of the run, seeds 0..{}\n\
             - lr selected per optimizer by mean final validation accuracy\n- machine: {} ({} threads), load average at start {}, at end {}\n\
             - wall time: {:.0} s{}\n\n## Sweep (MLP)\n\n{}\n## Each optimizer at its selected lr (MLP)\n\n{}\n",
            if p.quick { " (--quick smoke run: not a result)" } else { "" },
            self.data.description,
            p.model,
            p.batch_size,
            p.epochs,
            p.decay_factor,
            p.decay_at,
            p.seeds,
            cpu_model(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            self.load_start,
            loadavg(),
            self.seconds,
            if self.reused > 0 {
                format!(" (this invocation; {} runs were reused from an interrupted earlier one)", self.reused)
            } else {
                String::new()
            },
            report::sweep_table(self.summary),
            report::best_table(self.summary),
        );
        if p.conv_epochs > 0 {
            s += &format!(
                "## Conv net, one seed, {} epochs on {} training examples\n\n{}\n",
                p.conv_epochs,
                p.conv_train_examples
                    .map(|n| n.min(self.data.train.len()).to_string())
                    .unwrap_or_else(|| self.data.train.len().to_string()),
                report::conv_table(self.conv, self.conv_errors)
            );
        }
        let vsgd_selected = self
            .summary
            .iter()
            .find(|a| a.label == "vsgd")
            .and_then(|a| a.selected_cell())
            .map(|c| c.lr);
        if let Some(lr) = vsgd_selected {
            s += &format!("## VSGD effective momentum β₁ = B_h/(B_g+B_h), lr {lr}, seed 0\n\n| after | mean | p05 | p25 | median | p75 | p95 |\n|---|---|---|---|---|---|---|\n");
            if let Some(r) = self
                .records
                .iter()
                .find(|r| r.arm == "vsgd" && r.lr == lr && r.seed == 0)
            {
                for b in &r.beta1 {
                    let q = b.quantiles;
                    let when = if b.epoch == 0 {
                        "step 1".to_string()
                    } else {
                        format!("epoch {}", b.epoch)
                    };
                    s += &format!(
                        "| {when} | {:.5} | {:.5} | {:.5} | {:.5} | {:.5} | {:.5} |\n",
                        b.mean, q[0], q[1], q[2], q[3], q[4]
                    );
                }
            }
        }
        s
    }
}

fn write(path: PathBuf, text: String, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    if !files.contains(&path) {
        files.push(path);
    }
    Ok(())
}

/// curves.png, sweep.png and beta1.png from the sweep.
fn write_plots(
    plan: &Plan,
    data: &Prepared,
    summary: &[ArmSummary],
    records: &[RunRecord],
    opts: &ExperimentOptions,
    files: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let what = format!("{} on {} ({} seeds)", plan.model, data.dataset, plan.seeds);
    let path = opts.out_dir.join("curves.png");
    plots::curves(
        &path,
        &format!("each optimizer at its selected lr: {what}"),
        summary,
        records,
    )?;
    if !files.contains(&path) {
        files.push(path);
    }
    let path = opts.out_dir.join("sweep.png");
    plots::sweep(&path, &format!("learning-rate sweep: {what}"), summary)?;
    if !files.contains(&path) {
        files.push(path);
    }
    let vsgd = summary
        .iter()
        .find(|a| a.label == "vsgd")
        .and_then(|a| a.selected_cell());
    if let Some(cell) = vsgd {
        let seed0 = |lr: f64| records.iter().find(|r| r.arm == "vsgd" && r.lr == lr && r.seed == 0);
        let per_lr: Vec<&RunRecord> = plan
            .arms
            .iter()
            .filter(|a| a.label == "vsgd")
            .flat_map(|a| a.lrs.iter().filter_map(|&lr| seed0(lr)))
            .filter(|r| !r.beta1.is_empty())
            .collect();
        if let Some(selected) = seed0(cell.lr) {
            let path = opts.out_dir.join("beta1.png");
            plots::beta1(
                &path,
                &format!("VSGD effective momentum β₁ over training: {what}"),
                selected,
                &per_lr,
            )?;
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(())
}

/// Run the experiment; returns the files written.
pub fn run(opts: &ExperimentOptions) -> anyhow::Result<Vec<PathBuf>> {
    let plan = Plan::for_options(opts);
    let started = Instant::now();
    let load_start = loadavg();
    let data = plan::prepare(&plan, opts)?;
    let total = plan.sweep_runs();
    println!(
        "kiln experiment optimizers{}: {}\n{} MLP runs ({} optimizers × their lrs × {} seeds × {} epochs), then the conv net; load average {}",
        if plan.quick { " --quick" } else { "" },
        data.description,
        total,
        plan.arms.len(),
        plan.seeds,
        plan.epochs,
        load_start
    );
    let results = opts.out_dir.join("results.json");
    let (mut previous, mut previous_conv) = previous_runs(&results, &plan, &data);
    if !previous.is_empty() {
        println!(
            "reusing the {} runs that {} holds from an interrupted run with this configuration",
            previous.len() + previous_conv.len(),
            results.display()
        );
    }
    let mut records = Vec::new();
    let (mut k, mut reused) = (0, 0);
    for arm in &plan.arms {
        for &lr in &arm.lrs {
            for seed in 0..plan.seeds as u64 {
                k += 1;
                let (r, reused) = match take_previous(&mut previous, &plan.model, &arm.label, lr, seed) {
                    Some(r) => {
                        reused += 1;
                        (r, " (reused)")
                    }
                    None => (
                        runner::train_one(
                            &spec(&plan, &plan.model, arm, lr, seed, plan.epochs),
                            &data.train,
                            &data.val,
                            &data.test,
                        )?,
                        "",
                    ),
                };
                println!("{}{reused}", progress_line(k, total, &r));
                records.push(r);
            }
        }
    }
    let arms: Vec<(String, Vec<f64>)> = plan.arms.iter().map(|a| (a.label.clone(), a.lrs.clone())).collect();
    let summary = report::summarise(&arms, &records);
    let mut files = Vec::new();
    let mut outcome = Outcome {
        plan: &plan,
        data: &data,
        records: &records,
        summary: &summary,
        conv: &[],
        conv_errors: &[],
        load_start: load_start.clone(),
        seconds: started.elapsed().as_secs_f64(),
        complete: false,
        reused,
    };
    // Written now so a failure or interruption in the follow-up never loses the sweep.
    write(
        results.clone(),
        serde_json::to_string_pretty(&outcome.json())? + "\n",
        &mut files,
    )?;
    write(opts.out_dir.join("summary.md"), outcome.markdown(), &mut files)?;
    write_plots(&plan, &data, &summary, &records, opts, &mut files)?;

    let (mut conv, mut conv_errors) = (Vec::new(), Vec::new());
    if plan.conv_epochs > 0 {
        let train = match plan.conv_train_examples {
            Some(n) if n < data.train.len() => data.train.split_holdout(n as f64 / data.train.len() as f64, 1)?.1,
            _ => data.train.clone(),
        };
        for (arm, s) in plan.arms.iter().zip(&summary) {
            let Some(cell) = s.selected_cell() else {
                conv_errors.push((arm.label.clone(), "no learning rate finished the MLP sweep".into()));
                continue;
            };
            if let Some(r) = take_previous(&mut previous_conv, "convnet", &arm.label, cell.lr, 0) {
                outcome.reused += 1;
                println!("{} (reused)", progress_line(conv.len() + 1, plan.arms.len(), &r));
                conv.push(r);
                continue;
            }
            match runner::train_one(
                &spec(&plan, "convnet", arm, cell.lr, 0, plan.conv_epochs),
                &train,
                &data.val,
                &data.test,
            ) {
                Ok(r) => {
                    println!("{}", progress_line(conv.len() + 1, plan.arms.len(), &r));
                    conv.push(r);
                    // Keep every finished run on disk (an interrupted run resumes from it).
                    let so_far = Outcome {
                        conv: &conv,
                        conv_errors: &conv_errors,
                        seconds: started.elapsed().as_secs_f64(),
                        ..outcome.clone()
                    };
                    let text = serde_json::to_string_pretty(&so_far.json())? + "\n";
                    write(results.clone(), text, &mut files)?;
                }
                Err(e) => {
                    println!("convnet {} failed: {e:#}", arm.label);
                    conv_errors.push((arm.label.clone(), format!("{e:#}")));
                }
            }
        }
    }
    outcome.conv = &conv;
    outcome.conv_errors = &conv_errors;
    outcome.complete = true;
    outcome.seconds = started.elapsed().as_secs_f64();
    write(
        results,
        serde_json::to_string_pretty(&outcome.json())? + "\n",
        &mut files,
    )?;
    write(opts.out_dir.join("summary.md"), outcome.markdown(), &mut files)?;

    println!(
        "done in {:.0} s (load average at start {load_start}, now {})",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(files)
}
