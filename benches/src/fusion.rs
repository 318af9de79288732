//! The fusion suite of `kiln bench` (`--suite fusion`, the benchmarks of the fusion
//! issue): fused vs unfused (one kernel per op) for a 20-op elementwise chain, softmax
//! cross-entropy (forward, and forward + backward) over `[rows, 1000]`, and the MLP
//! 784-256-256-10 forward + backward; the effective bandwidth of each against the same
//! run's triad, and the Cranelift compile time per generated kernel. It builds the
//! workload graphs and measures them; it never decides what is fast enough.
//!
//! Every workload keeps its big operands in state buffers (read-only unless updated) and
//! writes its results with in-place updates, so a timed run binds at most a label
//! vector and reads back at most a scalar loss: the timing is the kernels alone.

use std::time::{Duration, Instant};

use anyhow::Context;
use kiln_compiler::autodiff::grad_tensors;
use kiln_compiler::rewrite::{rewrite, RewriteOptions};
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Graph, GraphBuilder, Init, SourceKind, Tensor, Value};
use serde_json::json;

use crate::{compile_graph, minimal_bytes, time_runs, BenchResult, Timing};

/// The cases of the fusion suite, in run order.
pub const FUSION_CASES: &[&str] = &["chain20", "xent", "xent-grad", "mlp-fwdbwd"];
/// Columns of the cross-entropy logits.
pub const XENT_CLASSES: usize = 1000;
/// Default rows of the cross-entropy logits.
pub const XENT_ROWS: usize = 4096;

/// Fusion-suite configuration.
#[derive(Clone, Debug)]
pub struct FusionSuite {
    /// Cases to run (names from [`FUSION_CASES`]).
    pub cases: Vec<String>,
    /// Elements of the elementwise chain.
    pub size: usize,
    /// Rows of the cross-entropy logits (`[rows, 1000]`).
    pub rows: usize,
    /// Batch of the MLP forward + backward.
    pub batch: usize,
    pub warmup: usize,
    pub reps: usize,
}

/// The 20-op elementwise chain: `a <- f(a, b)` over `n` fp32 elements, where `f` applies
/// 20 cheap elementwise ops (add, mul, sub, max, min with `b`; neg, abs) in a sequence
/// the rewriter cannot shorten. Reads `a` and `b`, writes `a`: 12 bytes per element
/// fused, like the triad; unfused, every op is a kernel over the whole tensor.
pub fn chain_graph(n: usize) -> anyhow::Result<Graph> {
    let b = GraphBuilder::new();
    let a = b.param("a", [n], Init::Uniform { low: -1.0, high: 1.0 });
    let c = b.state("b", [n], Init::Constant(1.0));
    let mut t = a.clone();
    for step in CHAIN {
        t = match step {
            'a' => &t + &c,
            'm' => &t * &c,
            's' => &t - &c,
            'x' => t.maximum(&c),
            'n' => t.minimum(&c),
            '-' => t.neg(),
            '|' => t.abs(),
            other => anyhow::bail!("chain op `{other}` is not defined"),
        };
    }
    b.update(&a, &t);
    Ok(b.finish()?)
}

/// The ops of [`chain_graph`]: a(dd) m(ul) s(ub) (ma)x (mi)n, - neg, | abs. Every neg is
/// followed by a max or min, so the rewriter can neither merge it into a sub nor carry it
/// through a mul into an abs: all 20 ops survive rewriting (tested).
const CHAIN: [char; 20] = [
    'a', 'm', 's', 'x', '-', 'n', 'a', '|', 's', 'n', 'm', 'a', '-', 'x', 's', 'm', '|', 'a', 'n', 'm',
];

/// Softmax cross-entropy over `[rows, classes]` logits held in a state buffer, with i32
/// labels as the only input; the mean loss is the output. With `with_grad`, the gradient
/// of the loss with respect to the logits is computed too and written to the state
/// `grad.logits` (what a training step does with it).
pub fn xent_graph(rows: usize, classes: usize, with_grad: bool) -> anyhow::Result<Graph> {
    let b = GraphBuilder::new();
    let logits = b.state("logits", [rows, classes], Init::Normal { mean: 0.0, std: 2.0 });
    let y = b.input("y", [rows], DType::I32);
    let loss = logits.cross_entropy(&y);
    b.output("loss", &loss);
    if with_grad {
        let g = grad_tensors(&loss, &[&logits]).context("differentiating the cross-entropy")?;
        let slot = b.state("grad.logits", [rows, classes], Init::Zeros);
        b.update(&slot, &g[0]);
    }
    Ok(b.finish()?)
}

/// The MLP 784-256-256-10 (ReLU, `kiln_models::nets` "mlp") forward + backward at
/// `batch`: the batch is a state buffer, labels the only input, the mean cross-entropy
/// the output, and the gradient of every parameter is written to a state
/// `grad.<param>`. No optimizer: the step suite measures the whole training step.
pub fn mlp_fwdbwd_graph(batch: usize) -> anyhow::Result<Graph> {
    let model = kiln_models::nets::by_name("mlp", &[784], 10)?;
    let b = GraphBuilder::new();
    let x = b.state("x", [batch, 784], Init::Uniform { low: -1.0, high: 1.0 });
    let y = b.input("y", [batch], DType::I32);
    let loss = model.forward(&b, &x).cross_entropy(&y);
    b.output("loss", &loss);
    let params: Vec<(String, Tensor)> = b
        .with_graph(|g| {
            g.sources_of(SourceKind::Param)
                .into_iter()
                .map(|id| (g.node(id).op.source_name().unwrap_or("param").to_string(), id))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .map(|(name, id)| (name, b.tensor(id)))
        .collect();
    let refs: Vec<&Tensor> = params.iter().map(|(_, t)| t).collect();
    let grads = grad_tensors(&loss, &refs).context("differentiating the MLP")?;
    for ((name, p), g) in params.iter().zip(&grads) {
        let slot = b.state(&format!("grad.{name}"), p.dims(), Init::Zeros);
        b.update(&slot, g);
    }
    Ok(b.finish()?)
}

/// Labels `i % classes` as the `y` input.
fn labels(rows: usize, classes: usize) -> anyhow::Result<Bindings> {
    let y: Vec<f64> = (0..rows).map(|i| (i % classes) as f64).collect();
    let mut b = Bindings::new();
    b.insert("y".into(), Value::new([rows], DType::I32, y)?);
    Ok(b)
}

/// Cranelift compile time of each generated function of a compile, in ms: (mean, max, count).
pub fn jit_per_kernel(functions: &[(String, Duration, usize)]) -> (f64, f64, usize) {
    if functions.is_empty() {
        return (0.0, 0.0, 0);
    }
    let ms: Vec<f64> = functions.iter().map(|f| f.1.as_secs_f64() * 1e3).collect();
    let max = ms.iter().copied().fold(0.0, f64::max);
    (ms.iter().sum::<f64>() / ms.len() as f64, max, ms.len())
}

/// The graph and per-run inputs of one fusion case (a name from [`FUSION_CASES`]), and
/// the row name it reports under: `chain20` over `size` elements, `xent`/`xent-grad`
/// over `[rows, 1000]`, `mlp-fwdbwd` at `batch`.
pub fn fusion_workload(
    case: &str,
    size: usize,
    rows: usize,
    batch: usize,
) -> anyhow::Result<(String, Graph, Bindings)> {
    Ok(match case {
        "chain20" => (format!("chain20/{size}"), chain_graph(size)?, Bindings::new()),
        "xent" => (
            format!("xent/{rows}x{XENT_CLASSES}"),
            xent_graph(rows, XENT_CLASSES, false)?,
            labels(rows, XENT_CLASSES)?,
        ),
        "xent-grad" => (
            format!("xent-grad/{rows}x{XENT_CLASSES}"),
            xent_graph(rows, XENT_CLASSES, true)?,
            labels(rows, XENT_CLASSES)?,
        ),
        "mlp-fwdbwd" => (
            format!("mlp-fwdbwd/b{batch}"),
            mlp_fwdbwd_graph(batch)?,
            labels(batch, 10)?,
        ),
        other => anyhow::bail!(
            "unknown fusion case `{other}`; valid cases: {}",
            FUSION_CASES.join(", ")
        ),
    })
}

/// Run the fusion suite. `copy_gbps` (the same run's triad) gives each row
/// `ratio_to_copy`.
pub fn run_fusion_suite(
    cfg: &FusionSuite,
    copy_gbps: f64,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<BenchResult>> {
    let mut out = Vec::new();
    for case in &cfg.cases {
        let (name, graph, inputs) = fusion_workload(case, cfg.size, cfg.rows, cfg.batch)?;
        match fusion_case(cfg, name.clone(), &graph, &inputs, copy_gbps) {
            Ok(r) => {
                log(&format!("{}: done", r.name));
                out.push(r);
            }
            // Reported and skipped: one case that does not compile hides no other number.
            Err(e) => log(&format!("{name}: SKIPPED: {e:#}")),
        }
    }
    Ok(out)
}

fn fusion_case(
    cfg: &FusionSuite,
    name: String,
    g: &Graph,
    inputs: &Bindings,
    copy_gbps: f64,
) -> anyhow::Result<BenchResult> {
    let mut r = BenchResult {
        suite: "fusion".into(),
        name,
        bytes_per_step: minimal_bytes(g),
        ..Default::default()
    };
    let ops = |g: &Graph| g.live_mask().iter().filter(|&&l| l).count();
    r.extra.insert("ops".into(), json!(ops(g)));
    let (rewritten, _) = rewrite(g, &RewriteOptions::default());
    r.extra.insert("ops_rewritten".into(), json!(ops(&rewritten)));
    for fuse in [true, false] {
        let t = Instant::now();
        let mut c = compile_graph(g, fuse, true)?;
        let compile_wall = t.elapsed();
        let timing: Timing = time_runs(&mut c.exe, inputs, cfg.warmup, cfg.reps)?;
        let (mean, max, count) = jit_per_kernel(&c.functions);
        let tag = if fuse { "fused" } else { "unfused" };
        r.extra.insert(format!("jit_ms_per_kernel_{tag}"), json!(mean));
        r.extra.insert(format!("jit_ms_per_kernel_max_{tag}"), json!(max));
        r.extra.insert(format!("functions_{tag}"), json!(count));
        if fuse {
            r.fused = Some(timing);
            r.launches_fused = c.launches;
            r.compile = c.times.clone();
            // compile_graph's wall time: the compile stages plus allocating and initialising
            // every buffer (seconds for 2^24 random values), so it is not a compile time.
            r.extra.insert(
                "compile_and_alloc_wall_ms".into(),
                json!(compile_wall.as_secs_f64() * 1e3),
            );
        } else {
            r.unfused = Some(timing);
            r.launches_unfused = c.launches;
        }
    }
    if copy_gbps > 0.0 {
        r.extra.insert("ratio_to_copy".into(), json!(r.gbps() / copy_gbps));
    }
    if let (Some(f), Some(u)) = (r.fused, r.unfused) {
        r.extra.insert("speedup".into(), json!(u.median_ms / f.median_ms));
    }
    Ok(r)
}
