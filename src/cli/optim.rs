//! `kiln optim replay`: run an optimizer over recorded gradients (a JSON trace) through
//! the real compile pipeline and print the parameters after every step, so users can
//! check kiln against another framework.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use kiln::compiled_executor::CompiledExecutor;
use kiln_models::optim::{self, replay, steps_to_json, Executor, Interpreter, Trace};
use kiln_runtime::compile::CompileOptions;

#[derive(Args)]
pub struct OptimArgs {
    #[command(subcommand)]
    pub command: OptimCommand,
}

#[derive(Subcommand)]
pub enum OptimCommand {
    /// Replay a gradient trace and print {"steps": [{param: [values...]}, ...]} on stdout.
    ///
    /// Trace: {"optimizer": "vsgd", "hyper": {"lr": 0.03, ...},
    /// "params": {"w": {"shape": [7, 5], "data": [...]}}, "grads": [{"w": [...]}, ...],
    /// "noise": [{"w": [...]}, ...] (ivon, ivon-poco; optional)}. Extra evaluation points
    /// use keys "<param>@<label>" (e.g. "w@snapshot" for SVRG); svrg and ivon-poco take a
    /// "refresh": [{"before_step": 0, "batches": [{"weight": 1.0, "grads": {...}}]}] list;
    /// optional "state" and "start_step" continue a run captured mid-way.
    Replay(ReplayArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayBackend {
    /// The compiled CPU pipeline (fused kernels), as in training.
    Cpu,
    /// The f64 reference interpreter.
    Reference,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The JSON trace.
    #[arg(long)]
    pub trace: PathBuf,
    /// Override hyperparameters, e.g. --set lr=0.01.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[arg(long, value_enum, default_value_t = ReplayBackend::Cpu)]
    pub backend: ReplayBackend,
    /// One kernel per op instead of fused kernels.
    #[arg(long)]
    pub no_fuse: bool,
}

pub fn run(args: &OptimArgs) -> anyhow::Result<()> {
    match &args.command {
        OptimCommand::Replay(r) => replay_cmd(r),
    }
}

fn replay_cmd(args: &ReplayArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.trace).with_context(|| format!("reading {}", args.trace.display()))?;
    let trace = Trace::parse(&text).with_context(|| format!("in {}", args.trace.display()))?;
    let overrides = args
        .set
        .iter()
        .map(|s| optim::parse_assignment(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut compiled;
    let mut reference = Interpreter;
    let exec: &mut dyn Executor = match args.backend {
        ReplayBackend::Cpu => {
            compiled = CompiledExecutor::new(CompileOptions {
                fuse: !args.no_fuse,
                ..Default::default()
            });
            &mut compiled
        }
        ReplayBackend::Reference => &mut reference,
    };
    let steps = replay(&trace, &overrides, exec).with_context(|| format!("replaying {}", args.trace.display()))?;
    println!("{}", steps_to_json(&steps));
    Ok(())
}
