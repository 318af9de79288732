//! `kiln experiment <name>`: run one of the seed papers' experiments end to end
//! (JSON results + plots in `--out`). Presentation only; the experiments live in
//! `kiln::experiment`.

use clap::Args;
use kiln::experiment::{self, ExperimentOptions, EXPERIMENTS};

#[derive(Args)]
pub struct ExperimentArgs {
    /// Experiment: optimizers or convex (`kiln experiment list` prints them).
    pub name: String,
    /// CI-sized smoke run (under two minutes): checks the pipeline, not the science.
    #[arg(long)]
    pub quick: bool,
    /// Output folder for JSON results and plots [default: experiments/out/<name>].
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Seeds per configuration (default: the experiment's own, 3 for full runs).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Directory with the full data sets (e.g. Fashion-MNIST IDX files), if installed.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

pub fn run(args: &ExperimentArgs) -> anyhow::Result<()> {
    if args.name == "list" {
        for (name, what) in EXPERIMENTS {
            println!("{name:<12} {what}");
        }
        return Ok(());
    }
    let opts = ExperimentOptions {
        out_dir: args
            .out
            .clone()
            .unwrap_or_else(|| std::path::Path::new("experiments/out").join(&args.name)),
        quick: args.quick,
        seeds: args.seeds,
        data_dir: args.data_dir.clone(),
    };
    let start = std::time::Instant::now();
    let files = experiment::run(&args.name, &opts)?;
    eprintln!(
        "experiment `{}` finished in {:.1} s; wrote {} files:",
        args.name,
        start.elapsed().as_secs_f64(),
        files.len()
    );
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}
