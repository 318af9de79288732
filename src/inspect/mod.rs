//! Inspection of every compile stage of a built-in model's training step (the library
//! half of `kiln inspect`): the forward+loss graph, the graph with its backward pass, the
//! full step graph from [`crate::step::build_step`], the e-graph-rewritten graph and its
//! statistics, the fusion plan ([`fusion`]), the kernel IR, Cranelift IR, CUDA C and
//! PTX ([`code`]) and an SVG of the fusion plan ([`svg`]). It only builds and prints; it
//! never runs a step and holds no presentation policy beyond the text/JSON formats.

pub mod bench_step;
pub mod code;
pub mod fusion;
pub mod svg;

use anyhow::Context;
use kiln_compiler::autodiff::grad_tensors;
use kiln_compiler::kernel::Program;
use kiln_compiler::lower::{lower, LowerOptions};
use kiln_compiler::rewrite::{rewrite, RewriteOptions, RewriteStats};
use kiln_ir::{DType, Graph, GraphBuilder, SourceKind, Tensor};
use kiln_models::{nets, optim};
use serde_json::{json, Value as Json};

use crate::step::build_step;

/// Every stage `kiln inspect --stage` knows, in pipeline order.
pub const STAGES: &[&str] = &[
    "graph", "grad", "optim", "rewrite", "fusion", "kernels", "clif", "cuda", "ptx",
];

/// What to build.
#[derive(Clone, Debug)]
pub struct InspectOptions {
    pub model: String,
    pub optim: String,
    pub batch: usize,
    /// Fuse kernels (false: one kernel per op).
    pub fuse: bool,
    /// Run the e-graph rewriter before lowering.
    pub rewrite: bool,
    /// Hyperparameter values (`lr`, `kg`, ...). Most are runtime scalars that do not
    /// change the compiled step, but optimizers without a default (IVON's `lr`) need one.
    pub hyper: Vec<(String, f64)>,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            model: "mlp".into(),
            optim: "vsgd".into(),
            batch: 128,
            fuse: true,
            rewrite: true,
            hyper: Vec::new(),
        }
    }
}

/// Example shape of the default data set (Fashion-MNIST) for a built-in model.
pub fn example_shape(model: &str) -> Vec<usize> {
    if model == "convnet" {
        vec![1, 28, 28]
    } else {
        vec![784]
    }
}

/// The graphs of every construction stage and the lowered program.
pub struct Pipeline {
    /// Forward pass and loss.
    pub forward: Graph,
    /// Forward, loss and the gradient of every parameter (as outputs `grad.<param>`).
    pub grad: Graph,
    /// The full training step (model + autodiff + optimizer update).
    pub step: Graph,
    /// `step` after e-graph rewriting (a clone of `step` with `rewrite: false`).
    pub rewritten: Graph,
    pub rewrite_stats: RewriteStats,
    /// `rewritten` lowered to kernels; its node ids refer to `rewritten`.
    pub program: Program,
}

fn loss_of(model: &dyn nets::Model, b: &GraphBuilder, batch: usize) -> Tensor {
    let mut shape = vec![batch];
    shape.extend(model.example_shape());
    let x = b.input("x", shape, DType::F32);
    let y = b.input("y", [batch], DType::I32);
    model.forward(b, &x).cross_entropy(&y)
}

/// Build every stage for `opts`.
pub fn build(opts: &InspectOptions) -> anyhow::Result<Pipeline> {
    anyhow::ensure!(opts.batch > 0, "--batch must be at least 1");
    let model = nets::by_name(&opts.model, &example_shape(&opts.model), 10)?;
    let mut optimizer = optim::by_name(&opts.optim)?;
    for (key, value) in &opts.hyper {
        optimizer.set(key, *value)?;
    }

    let b = GraphBuilder::new();
    let loss = loss_of(model.as_ref(), &b, opts.batch);
    b.output("loss", &loss);
    let forward = b.finish().context("building the forward graph")?;

    let params: Vec<(String, Tensor)> = b.with_graph(|g| {
        g.sources_of(SourceKind::Param)
            .into_iter()
            .map(|id| {
                (
                    g.node(id).op.source_name().unwrap_or_default().to_string(),
                    b.tensor(id),
                )
            })
            .collect()
    });
    let refs: Vec<&Tensor> = params.iter().map(|(_, t)| t).collect();
    let grads = grad_tensors(&loss, &refs).context("differentiating the loss")?;
    for ((name, _), g) in params.iter().zip(&grads) {
        b.output(&format!("grad.{name}"), g);
    }
    let grad = b.finish().context("building the gradient graph")?;

    let batch = opts.batch;
    let graphs = build_step(optimizer.as_ref(), &|b: &GraphBuilder| {
        loss_of(model.as_ref(), b, batch)
    })
    .context("assembling the training step")?;
    let step = graphs.step;
    let ro = if opts.rewrite {
        RewriteOptions::default()
    } else {
        RewriteOptions::disabled()
    };
    let (rewritten, rewrite_stats) = rewrite(&step, &ro);
    let lo = if opts.fuse {
        LowerOptions::fused()
    } else {
        LowerOptions::unfused()
    };
    let program = lower(&rewritten, &lo).context("lowering the step to kernels")?;
    Ok(Pipeline {
        forward,
        grad,
        step,
        rewritten,
        rewrite_stats,
        program,
    })
}

/// The rewrite statistics in the documented JSON format:
/// `{"ops_before","ops_after","time_ms","phases":[{"name","iterations","stop_reason","nodes"}],"top_rules":[{"rule","applications"}]}`.
pub fn rewrite_json(stats: &RewriteStats) -> Json {
    json!({
        "ops_before": stats.ops_before,
        "ops_after": stats.ops_after,
        "nodes_before": stats.nodes_before,
        "nodes_after": stats.nodes_after,
        "time_ms": stats.total_time.as_secs_f64() * 1e3,
        "phases": stats.phases.iter().map(|p| json!({
            "name": p.phase,
            "iterations": p.iterations,
            "stop_reason": p.stop_reason.to_string(),
            "nodes": p.egraph_nodes,
            "classes": p.egraph_classes,
            "time_ms": p.time.as_secs_f64() * 1e3,
        })).collect::<Vec<_>>(),
        "top_rules": stats.top_rules(10).iter().map(|(r, n)| json!({"rule": r, "applications": n})).collect::<Vec<_>>(),
    })
}

/// The text of one stage (`graph`, `grad`, `optim`, `rewrite`, `fusion`, `kernels`,
/// `clif`, `cuda`, `ptx`).
pub fn stage_text(p: &Pipeline, stage: &str) -> anyhow::Result<String> {
    Ok(match stage {
        "graph" => p.forward.to_string(),
        "grad" => p.grad.to_string(),
        "optim" => p.step.to_string(),
        "rewrite" => format!("{}\n# statistics\n{}\n", p.rewritten, p.rewrite_stats),
        "fusion" => fusion::FusionReport::new(&p.rewritten, &p.program).to_string(),
        "kernels" => p.program.to_string(),
        "clif" => code::clif_text(&p.program)?,
        "cuda" => code::cuda_text(&p.program)?,
        "ptx" => code::ptx_text(&p.program)?,
        other => anyhow::bail!("unknown stage `{other}`; valid stages: {}, all", STAGES.join(", ")),
    })
}

/// File name of a stage in `--dump-dir`.
pub fn stage_file(stage: &str) -> &'static str {
    match stage {
        "graph" => "1_graph.ir",
        "grad" => "2_grad.ir",
        "optim" => "3_optim.ir",
        "rewrite" => "4_rewrite.ir",
        "fusion" => "5_fusion.txt",
        "kernels" => "6_kernels.ir",
        "clif" => "7_kernels.clif",
        "cuda" => "8_kernels.cu",
        _ => "9_kernels.ptx",
    }
}

/// Write every stage into `dir`: `.ir`/`.clif`/`.cu`/`.ptx` text, `fusion.json`,
/// `rewrite.json` and `fusion.dot` (nodes coloured by kernel; `--svg` renders it). A stage that cannot
/// be produced here (PTX without NVRTC) is written as a `.txt` note saying why. Returns
/// the files written.
pub fn dump(p: &Pipeline, dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for stage in STAGES {
        match stage_text(p, stage) {
            Ok(t) => write(stage_file(stage), &t)?,
            Err(e) => write(&format!("{}.unavailable.txt", stage_file(stage)), &format!("{e:#}\n"))?,
        }
    }
    let report = fusion::FusionReport::new(&p.rewritten, &p.program);
    write("fusion.json", &serde_json::to_string_pretty(&report.to_json())?)?;
    write(
        "rewrite.json",
        &serde_json::to_string_pretty(&rewrite_json(&p.rewrite_stats))?,
    )?;
    write("fusion.dot", &svg::fusion_dot(&p.rewritten, &p.program))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperparameters_without_defaults_come_from_the_options() {
        let opts = |hyper: &[(&str, f64)]| InspectOptions {
            model: "logreg".into(),
            optim: "ivon".into(),
            batch: 2,
            hyper: hyper.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        };
        let err = build(&opts(&[])).err().expect("IVON without lr/ess built");
        assert!(format!("{err:#}").contains("--set"), "{err:#}");
        let p = build(&opts(&[("lr", 0.1), ("ess", 1000.0)])).unwrap();
        assert!(p.program.launches() > 0);
        let err = build(&opts(&[("lr", 0.1), ("ess", 1000.0), ("nonsense", 1.0)]))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("nonsense"), "{err:#}");
    }
}
