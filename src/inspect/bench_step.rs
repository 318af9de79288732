//! The training-step suite of `kiln bench` (it needs `crate::step`, so it lives in the
//! root crate; the measurement machinery is `kiln_benches`): every built-in model x
//! optimizer, fused vs unfused, with and without e-graph rewriting, ms/step, GFLOP/s,
//! launches and the cold compile time by stage. Measures only.

use std::time::Instant;

use anyhow::Context;
use kiln_benches::{compile_graph, set_scalars, time_runs, BenchResult, StageTimes};
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, GraphBuilder, Value};
use kiln_models::nets;
use serde_json::json;

use super::fusion::node_flops;
use super::{example_shape, fusion::FusionReport};
use crate::step::build_step;

/// Step-suite configuration.
#[derive(Clone, Debug)]
pub struct StepSuite {
    pub models: Vec<String>,
    pub optimizers: Vec<String>,
    pub batch: usize,
    pub warmup: usize,
    pub reps: usize,
}

/// Deterministic batch: x in [-1, 1), labels cycling through the classes.
fn batch_inputs(shape: &[usize], classes: usize) -> anyhow::Result<Bindings> {
    let n: usize = shape.iter().product();
    let x: Vec<f64> = (0..n)
        .map(|i| ((i * 2654435761usize) % 2000) as f64 / 1000.0 - 1.0)
        .collect();
    let y: Vec<f64> = (0..shape[0]).map(|i| (i % classes) as f64).collect();
    let mut b = Bindings::new();
    b.insert("x".into(), Value::new(shape.to_vec(), DType::F32, x)?);
    b.insert("y".into(), Value::new([shape[0]], DType::I32, y)?);
    Ok(b)
}

/// One training-step workload: the step graph of `model` trained with `optimizer`
/// (benchmark hyperparameters, see `kiln_benches::bench_optimizer`), its deterministic
/// batch of `batch` examples and the optimizer's runtime scalars at step 1. Shared by
/// the step suite and the criterion benches, so both time the same thing.
pub struct StepWorkload {
    pub graph: kiln_ir::Graph,
    pub inputs: Bindings,
    pub scalars: Vec<(String, f64)>,
}

/// Build the [`StepWorkload`] of `model` x `optimizer` at `batch`.
pub fn step_workload(model: &str, optimizer: &str, batch: usize) -> anyhow::Result<StepWorkload> {
    let net = nets::by_name(model, &example_shape(model), 10)?;
    let mut shape = vec![batch];
    shape.extend(net.example_shape());
    let inputs = batch_inputs(&shape, 10)?;
    let opt = kiln_benches::bench_optimizer(optimizer)?;
    let graphs = build_step(opt.as_ref(), &|b: &GraphBuilder| {
        let x = b.input("x", shape.clone(), DType::F32);
        let y = b.input("y", [shape[0]], DType::I32);
        net.forward(b, &x).cross_entropy(&y)
    })
    .with_context(|| format!("building the {model} + {optimizer} step"))?;
    Ok(StepWorkload {
        graph: graphs.step,
        inputs,
        scalars: opt.scalars(1)?,
    })
}

/// Run the step suite.
pub fn run_step_suite(cfg: &StepSuite, log: &mut dyn FnMut(&str)) -> anyhow::Result<Vec<BenchResult>> {
    let mut out = Vec::new();
    for m in &cfg.models {
        for o in &cfg.optimizers {
            let t = Instant::now();
            let StepWorkload {
                graph: g,
                inputs,
                scalars,
            } = step_workload(m, o, cfg.batch)?;
            let build = t.elapsed();
            let live = g.live_mask();
            let flops: u64 = g.ids().filter(|id| live[id.index()]).map(|id| node_flops(&g, id)).sum();
            let mut r = BenchResult {
                suite: "step".into(),
                name: format!("{m}/{o}/b{}", cfg.batch),
                ..Default::default()
            };
            let mut failed = None;
            for (fuse, rw) in [(true, true), (false, true), (true, false)] {
                // A case that does not compile is reported and skipped, so one backend gap
                // does not hide every other number.
                let mut c = match compile_graph(&g, fuse, rw) {
                    Ok(c) => c,
                    Err(e) => {
                        failed = Some(format!("{e:#}"));
                        break;
                    }
                };
                set_scalars(&mut c.exe, &g, &scalars)?;
                let timing = time_runs(&mut c.exe, &inputs, cfg.warmup, cfg.reps)?;
                match (fuse, rw) {
                    (true, true) => {
                        r.fused = Some(timing);
                        r.launches_fused = c.launches;
                        r.compile = StageTimes { build, ..c.times };
                        let program = &c.exe.program().clone();
                        let (rewritten, _) =
                            kiln_compiler::rewrite::rewrite(&g, &kiln_compiler::rewrite::RewriteOptions::default());
                        r.bytes_per_step = FusionReport::new(&rewritten, program).bytes_per_step;
                    }
                    (false, _) => {
                        r.unfused = Some(timing);
                        r.launches_unfused = c.launches;
                    }
                    (true, false) => {
                        r.extra.insert("fused_norewrite_ms".into(), json!(timing.median_ms));
                        r.extra.insert("launches_norewrite".into(), json!(c.launches));
                    }
                }
            }
            if let Some(e) = failed {
                log(&format!("{}: SKIPPED, compile failed: {e}", r.name));
                continue;
            }
            let ms = r.fused.map(|t| t.median_ms).unwrap_or(f64::NAN);
            r.extra.insert("flops_per_step".into(), json!(flops));
            r.extra.insert("gflops".into(), json!(flops as f64 / (ms * 1e-3) / 1e9));
            log(&format!("{}: done", r.name));
            out.push(r);
        }
    }
    Ok(out)
}
