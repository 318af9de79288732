//! Argument parsing (clap derive) and dispatch to one file per subcommand. The CLI
//! uses `anyhow` for errors; it owns presentation, not logic.

mod bench;
mod experiment;
mod graph;
mod inspect;
mod optim;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Compiler-style autodiff and fused-kernel generator",
    long_about = "kiln differentiates tensor programs written in a Rust DSL, appends the optimizer \
                  update, rewrites the whole training step with e-graphs and compiles it into a few \
                  fused kernels."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the IR of a built-in model (forward, loss and optionally the backward pass).
    Graph(graph::GraphArgs),
    /// Print or dump any compile stage of a model's training step (graph .. kernels .. PTX).
    Inspect(inspect::InspectArgs),
    /// Measure optimizer and training steps, fused vs unfused.
    Bench(bench::BenchArgs),
    /// Train a built-in model (default: MLP + VSGD on the embedded Fashion-MNIST subset).
    Train(train::TrainArgs),
    /// Optimizer tools: `kiln optim replay --trace FILE.json`.
    Optim(optim::OptimArgs),
    /// Rerun a seed paper's experiment at small scale (results + plots): optimizers, convex.
    Experiment(experiment::ExperimentArgs),
}

pub fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Graph(args) => graph::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Optim(args) => optim::run(&args),
        Command::Experiment(args) => experiment::run(&args),
    }
}
