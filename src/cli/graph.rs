//! `kiln graph`: build a built-in model's loss graph (and its gradients with `--grad`)
//! and print it as text, or write Graphviz DOT.

use anyhow::Context;
use clap::Args;
use kiln_compiler::autodiff::grad_tensors;
use kiln_ir::{DType, GraphBuilder, Tensor};
use kiln_models::nets;

#[derive(Args)]
pub struct GraphArgs {
    /// Model: logreg, mlp or convnet.
    #[arg(long, default_value = "logreg")]
    pub model: String,
    /// Batch size of the example input.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Append the backward pass (gradients of the loss w.r.t. every parameter).
    #[arg(long)]
    pub grad: bool,
    /// Write Graphviz DOT to this file instead of printing text.
    #[arg(long)]
    pub dot: Option<std::path::PathBuf>,
}

/// Example shape of the default data set (Fashion-MNIST): images for the conv net,
/// flat vectors otherwise.
pub fn default_example_shape(model: &str) -> Vec<usize> {
    if model == "convnet" {
        vec![1, 28, 28]
    } else {
        vec![784]
    }
}

pub fn run(args: &GraphArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let example = default_example_shape(&args.model);
    let model = nets::by_name(&args.model, &example, 10)?;
    let b = GraphBuilder::new();
    let mut shape = vec![args.batch];
    shape.extend(&example);
    let x = b.input("x", shape, DType::F32);
    let y = b.input("y", [args.batch], DType::I32);
    let loss = model.forward(&b, &x).cross_entropy(&y);
    b.output("loss", &loss);
    if args.grad {
        let params: Vec<(String, Tensor)> = b.with_graph(|g| {
            g.sources_of(kiln_ir::SourceKind::Param)
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
    }
    let graph = b.finish().context("building the model graph")?;
    match &args.dot {
        Some(path) => {
            std::fs::write(path, kiln_ir::print::to_dot(&graph))
                .with_context(|| format!("writing DOT to {}", path.display()))?;
            eprintln!("wrote {} nodes to {}", graph.len(), path.display());
        }
        None => print!("{graph}"),
    }
    Ok(())
}
