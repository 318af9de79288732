//! The `kiln bench` suites as a library, shared by the CLI and the criterion benches:
//! compiling a graph with per-stage timings (rewrite, lowering, codegen, JIT), timing an
//! executable (warm-up, median/min/max of many repetitions), the optimizer-step
//! workloads (one flat tensor, or 200 mixed-size tensors) with their minimal byte
//! counts, the triad reference kernel compiled through kiln itself, and the JSON
//! result format. It measures; it never decides what is fast enough.

pub mod fusion;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kiln_compiler::codegen::clif::ClifOptions;
use kiln_compiler::lower::{lower, LowerOptions};
use kiln_compiler::rewrite::{rewrite, RewriteOptions};
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Graph, GraphBuilder, Init, Op, SourceKind, Tensor};
use kiln_models::optim::{build_phase, grad_input_name, Optimizer, Phase};
use kiln_runtime::compile::compile_code;
use kiln_runtime::executable::Executable;
use serde_json::{json, Value as Json};

/// The optimizers of the optimizer-step suite.
pub const OPTIM_SUITE: &[&str] = &["sgd", "adam", "vsgd", "ivon", "ivon-poco"];
/// Default tensor size of the optimizer suite (2^24 fp32 elements).
pub const DEFAULT_SIZE: usize = 1 << 24;
/// Number of tensors of the "mixed" layout.
pub const MIXED_TENSORS: usize = 200;

/// Wall-clock time of each compile stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// Building the graph (model + autodiff + optimizer), when the caller measured it.
    pub build: Duration,
    pub rewrite: Duration,
    pub lower: Duration,
    pub codegen: Duration,
    pub jit: Duration,
}

impl StageTimes {
    pub fn total(&self) -> Duration {
        self.build + self.rewrite + self.lower + self.codegen + self.jit
    }

    pub fn to_json(&self) -> Json {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        json!({
            "build_ms": ms(self.build), "rewrite_ms": ms(self.rewrite), "lower_ms": ms(self.lower),
            "codegen_ms": ms(self.codegen), "jit_ms": ms(self.jit), "total_ms": ms(self.total()),
        })
    }
}

/// A compiled step ready to run.
pub struct Compiled {
    pub exe: Executable,
    pub times: StageTimes,
    pub launches: usize,
    /// Cranelift compile time and code bytes of every generated function.
    pub functions: Vec<(String, Duration, usize)>,
}

/// Compile `graph` cold (no cache): optional e-graph rewrite, lowering (fused or one
/// kernel per op), Cranelift codegen and JIT, each stage timed.
pub fn compile_graph(graph: &Graph, fuse: bool, rewrite_on: bool) -> anyhow::Result<Compiled> {
    let mut times = StageTimes::default();
    let t = Instant::now();
    let ro = if rewrite_on {
        RewriteOptions::default()
    } else {
        RewriteOptions::disabled()
    };
    let (g, _) = rewrite(graph, &ro);
    times.rewrite = t.elapsed();
    let t = Instant::now();
    let lo = if fuse {
        LowerOptions::fused()
    } else {
        LowerOptions::unfused()
    };
    let program = lower(&g, &lo).context("lowering")?;
    times.lower = t.elapsed();
    let launches = program.launches();
    let compiled = compile_code(program, Some(graph.clone()), &ClifOptions::default()).context("code generation")?;
    times.codegen = compiled.stats.codegen;
    times.jit = compiled.stats.jit;
    let functions = compiled.stats.functions.clone();
    let exe = Executable::new(Arc::new(compiled), 0).context("allocating the step's memory")?;
    Ok(Compiled {
        exe,
        times,
        launches,
        functions,
    })
}

/// Median, min and max of repeated runs, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub reps: usize,
}

/// Run `exe` `warmup` times untimed, then `reps` times timed.
pub fn time_runs(exe: &mut Executable, inputs: &Bindings, warmup: usize, reps: usize) -> anyhow::Result<Timing> {
    let reps = reps.max(1);
    for _ in 0..warmup {
        exe.run(inputs).context("running the step")?;
    }
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        exe.run(inputs).context("running the step")?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = if reps % 2 == 1 {
        ms[reps / 2]
    } else {
        0.5 * (ms[reps / 2 - 1] + ms[reps / 2])
    };
    Ok(Timing {
        median_ms: median,
        min_ms: ms[0],
        max_ms: ms[reps - 1],
        reps,
    })
}

/// Set every runtime scalar the graph reads from `values`, ignoring the others.
pub fn set_scalars(exe: &mut Executable, graph: &Graph, values: &[(String, f64)]) -> anyhow::Result<()> {
    let used: Vec<String> = graph
        .sources_of(SourceKind::Scalar)
        .into_iter()
        .filter_map(|id| graph.node(id).op.source_name().map(str::to_string))
        .collect();
    for (name, v) in values {
        if used.contains(name) {
            exe.set_scalar(name, *v)
                .with_context(|| format!("setting scalar {name}"))?;
        }
    }
    Ok(())
}

/// The minimal bytes one step must move: every input, parameter and state that a live
/// node reads, read once, and every updated parameter/state written once (4 bytes per
/// element). For VSGD that is θ, g, μ, B_g, B_h read and θ, μ, B_g, B_h written: 36
/// bytes per element. A state that is only written (a gradient slot) is not read.
pub fn minimal_bytes(graph: &Graph) -> u64 {
    let live = graph.live_mask();
    let users = graph.users();
    let mut bytes = 0u64;
    for id in graph.ids() {
        let n = graph.node(id);
        let read = users[id.index()].iter().any(|u| live[u.index()]);
        if read && matches!(n.op, Op::Input { .. } | Op::Param { .. } | Op::State { .. }) {
            bytes += n.shape().numel() as u64 * 4;
        }
    }
    for &(target, _) in graph.updates() {
        bytes += graph.node(target).shape().numel() as u64 * 4;
    }
    bytes
}

/// `count` tensor sizes (deterministic, spread over two orders of magnitude) summing to
/// exactly `total`. Needs `total >= count`.
pub fn mixed_sizes(total: usize, count: usize) -> anyhow::Result<Vec<usize>> {
    anyhow::ensure!(
        count > 0 && total >= count,
        "--size {total} is too small for {count} tensors"
    );
    let weights: Vec<usize> = (0..count)
        .map(|i| 1 + (i * 7919 + 13) % 97 + if i % 17 == 0 { 400 } else { 0 })
        .collect();
    let w: usize = weights.iter().sum();
    let spare = total - count;
    let mut sizes: Vec<usize> = weights.iter().map(|&x| 1 + spare * x / w).collect();
    let sum: usize = sizes.iter().sum();
    sizes[0] += total - sum;
    Ok(sizes)
}

/// An optimizer-step graph over parameters of the given sizes. Gradients are
/// read-only state tensors (`grad.<param>`), so a run binds nothing and the timing is
/// the update alone, as in a training step where the gradient is already in memory.
pub fn optim_graph(opt: &dyn Optimizer, sizes: &[usize]) -> anyhow::Result<Graph> {
    let b = GraphBuilder::new();
    let params: Vec<Tensor> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| b.param(&format!("p{i}"), [n], Init::Normal { mean: 0.0, std: 0.1 }))
        .collect();
    let names: Vec<String> = (0..sizes.len()).map(|i| format!("p{i}")).collect();
    build_phase(opt, Phase::Step, &b, &params, &mut |pt| {
        Ok(names
            .iter()
            .zip(sizes)
            .map(|(n, &len)| {
                b.state(
                    &grad_input_name(n, &pt.label),
                    [len],
                    Init::Normal { mean: 0.0, std: 1e-2 },
                )
            })
            .collect())
    })
    .with_context(|| format!("building the {} update", opt.name()))?;
    Ok(b.finish()?)
}

/// The triad reference: `a <- a * s + b` over `n` fp32 elements (12 bytes per element),
/// compiled through kiln like any step.
pub fn triad_graph(n: usize) -> anyhow::Result<Graph> {
    let b = GraphBuilder::new();
    let a = b.param("a", [n], Init::Constant(1.0));
    let c = b.state("b", [n], Init::Constant(0.5));
    let s = b.scalar("s", DType::F32);
    let new = &(&a * &s) + &c;
    b.update(&a, &new);
    Ok(b.finish()?)
}

/// Measure the triad kernel: (GB/s, timing).
pub fn measure_triad(n: usize, warmup: usize, reps: usize) -> anyhow::Result<(f64, Timing)> {
    let g = triad_graph(n)?;
    let mut c = compile_graph(&g, true, true)?;
    c.exe.set_scalar("s", 0.999)?;
    let t = time_runs(&mut c.exe, &Bindings::new(), warmup, reps)?;
    Ok((gbps(minimal_bytes(&g), t.median_ms), t))
}

/// Bytes per millisecond as GB/s.
pub fn gbps(bytes: u64, ms: f64) -> f64 {
    if ms > 0.0 {
        bytes as f64 / (ms * 1e-3) / 1e9
    } else {
        0.0
    }
}

/// One row of the results.
#[derive(Clone, Debug, Default)]
pub struct BenchResult {
    pub suite: String,
    pub name: String,
    pub fused: Option<Timing>,
    pub unfused: Option<Timing>,
    /// Minimal bytes per step (optimizer suite) or the fusion plan's bytes (step suite).
    pub bytes_per_step: u64,
    pub launches_fused: usize,
    pub launches_unfused: usize,
    /// Cold compile of the fused step, all stages.
    pub compile: StageTimes,
    /// Extra fields (GFLOP/s, rewrite off, ratios).
    pub extra: serde_json::Map<String, Json>,
}

impl BenchResult {
    pub fn gbps(&self) -> f64 {
        self.fused
            .map(|t| gbps(self.bytes_per_step, t.median_ms))
            .unwrap_or(0.0)
    }

    pub fn to_json(&self) -> Json {
        let mut m = serde_json::Map::new();
        let t = |x: &Option<Timing>, f: fn(&Timing) -> f64| x.as_ref().map(f).map(Json::from).unwrap_or(Json::Null);
        m.insert("suite".into(), json!(self.suite));
        m.insert("name".into(), json!(self.name));
        m.insert("fused_ms".into(), t(&self.fused, |t| t.median_ms));
        m.insert("unfused_ms".into(), t(&self.unfused, |t| t.median_ms));
        m.insert("fused_min_ms".into(), t(&self.fused, |t| t.min_ms));
        m.insert("fused_max_ms".into(), t(&self.fused, |t| t.max_ms));
        m.insert("unfused_min_ms".into(), t(&self.unfused, |t| t.min_ms));
        m.insert("unfused_max_ms".into(), t(&self.unfused, |t| t.max_ms));
        m.insert("reps".into(), json!(self.fused.map(|t| t.reps).unwrap_or(0)));
        m.insert("bytes_per_step".into(), json!(self.bytes_per_step));
        m.insert("gbps".into(), json!(self.gbps()));
        m.insert("launches_fused".into(), json!(self.launches_fused));
        m.insert("launches_unfused".into(), json!(self.launches_unfused));
        m.insert("compile_ms".into(), json!(self.compile.total().as_secs_f64() * 1e3));
        m.insert("compile_stages".into(), self.compile.to_json());
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Json::Object(m)
    }
}

/// The machine the numbers were measured on.
pub fn machine() -> Json {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    json!({
        "cpu": cpu,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// The documented result format: `{"results":[..],"copy_gbps":..,"machine":{..}}`.
pub fn results_json(results: &[BenchResult], copy_gbps: f64) -> Json {
    json!({
        "results": results.iter().map(BenchResult::to_json).collect::<Vec<_>>(),
        "copy_gbps": copy_gbps,
        "machine": machine(),
    })
}

/// An optimizer by name with benchmark values for the hyperparameters that have no
/// default (IVON's `lr` = 0.1 and `ess` = 60000, the Fashion-MNIST training-set size).
pub fn bench_optimizer(name: &str) -> anyhow::Result<Box<dyn Optimizer>> {
    let mut o = kiln_models::optim::by_name(name)?;
    let missing: Vec<&'static str> = o
        .hyper()
        .values()
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k)
        .collect();
    for k in missing {
        let v = match k {
            "lr" => 0.1,
            "ess" => 60000.0,
            other => anyhow::bail!("optimizer `{name}` needs `{other}`, which the benchmark has no value for"),
        };
        o.set(k, v)?;
    }
    Ok(o)
}

/// Optimizer-step suite configuration.
#[derive(Clone, Debug)]
pub struct OptimSuite {
    pub optimizers: Vec<String>,
    /// Total elements per step.
    pub size: usize,
    pub warmup: usize,
    pub reps: usize,
}

/// Run the optimizer suite: for each optimizer, the flat and the 200-tensor layout,
/// fused and unfused. `copy_gbps` (the same run's triad) gives each row `ratio_to_copy`.
pub fn run_optim_suite(
    cfg: &OptimSuite,
    copy_gbps: f64,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<BenchResult>> {
    let mut out = Vec::new();
    let mixed = mixed_sizes(cfg.size, MIXED_TENSORS.min(cfg.size))?;
    for name in &cfg.optimizers {
        let opt = bench_optimizer(name)?;
        let scalars = opt.scalars(1)?;
        for (layout, sizes) in [("flat", vec![cfg.size]), ("mixed200", mixed.clone())] {
            match optim_case(cfg, opt.as_ref(), &scalars, layout, &sizes, copy_gbps) {
                Ok(r) => {
                    log(&format!("{}: done", r.name));
                    out.push(r);
                }
                // Reported and skipped: one case that does not compile hides no other number.
                Err(e) => log(&format!("{name}/{layout}: SKIPPED: {e:#}")),
            }
        }
    }
    Ok(out)
}

fn optim_case(
    cfg: &OptimSuite,
    opt: &dyn Optimizer,
    scalars: &[(String, f64)],
    layout: &str,
    sizes: &[usize],
    copy_gbps: f64,
) -> anyhow::Result<BenchResult> {
    let name = opt.name();
    let t = Instant::now();
    let g = optim_graph(opt, sizes)?;
    let build = t.elapsed();
    let mut r = BenchResult {
        suite: "optim".into(),
        name: format!("{name}/{layout}/{}", cfg.size),
        bytes_per_step: minimal_bytes(&g),
        ..Default::default()
    };
    for fuse in [true, false] {
        let mut c = compile_graph(&g, fuse, true)?;
        set_scalars(&mut c.exe, &g, scalars)?;
        let timing = time_runs(&mut c.exe, &Bindings::new(), cfg.warmup, cfg.reps)?;
        if fuse {
            r.fused = Some(timing);
            r.launches_fused = c.launches;
            r.compile = StageTimes { build, ..c.times };
        } else {
            r.unfused = Some(timing);
            r.launches_unfused = c.launches;
        }
    }
    let per_elem = r.bytes_per_step as f64 / cfg.size as f64;
    r.extra.insert("bytes_per_element".into(), json!(per_elem));
    if copy_gbps > 0.0 {
        r.extra.insert("ratio_to_copy".into(), json!(r.gbps() / copy_gbps));
    }
    if let (Some(f), Some(u)) = (r.fused, r.unfused) {
        r.extra.insert("speedup".into(), json!(u.median_ms / f.median_ms));
    }
    Ok(r)
}

/// A results table for the terminal.
pub fn table(results: &[BenchResult], copy_gbps: f64) -> String {
    let mut s = format!(
        "{:<28} {:>10} {:>10} {:>8} {:>8} {:>9} {:>7} {:>7} {:>10}\n",
        "case", "fused ms", "unfused ms", "speedup", "GB/s", "vs triad", "k fused", "k unf", "compile ms"
    );
    for r in results {
        let f = r.fused.map(|t| t.median_ms).unwrap_or(f64::NAN);
        let u = r.unfused.map(|t| t.median_ms).unwrap_or(f64::NAN);
        let ratio = if copy_gbps > 0.0 {
            r.gbps() / copy_gbps
        } else {
            f64::NAN
        };
        s.push_str(&format!(
            "{:<28} {:>10.3} {:>10.3} {:>7.2}x {:>8.2} {:>8.0}% {:>7} {:>7} {:>10.1}\n",
            r.name,
            f,
            u,
            u / f,
            r.gbps(),
            ratio * 100.0,
            r.launches_fused,
            r.launches_unfused,
            r.compile.total().as_secs_f64() * 1e3
        ));
        if let Some(fm) = r.fused {
            s.push_str(&format!("{:<28} min/max fused {:.3}/{:.3}", "", fm.min_ms, fm.max_ms));
            if let Some(um) = r.unfused {
                s.push_str(&format!(", unfused {:.3}/{:.3}", um.min_ms, um.max_ms));
            }
            s.push('\n');
        }
    }
    s.push_str(&format!("triad (a*s+b through kiln, same run): {copy_gbps:.2} GB/s\n"));
    s
}
