//! `kiln bench`: the optimizer-step, training-step and fusion suites, fused vs unfused,
//! with a triad kernel measured in the same run as the bandwidth reference. Prints a table and
//! optionally writes the documented JSON. Measurement lives in `kiln_benches`; the
//! training-step workloads (which need `kiln::step`) in `kiln::inspect::bench_step`.

use anyhow::Context;
use clap::Args;
use kiln::inspect::bench_step::{run_step_suite, StepSuite};
use kiln_benches::fusion::{run_fusion_suite, FusionSuite, FUSION_CASES, XENT_ROWS};
use kiln_benches::{measure_triad, results_json, run_optim_suite, table, OptimSuite, DEFAULT_SIZE, OPTIM_SUITE};

#[derive(Args)]
pub struct BenchArgs {
    /// Suite: optim (optimizer step alone), step (whole training step), fusion (elementwise
    /// chain, softmax cross-entropy, MLP forward+backward) or all.
    #[arg(long, default_value = "optim")]
    pub suite: String,
    /// Optimizers to run (comma-separated); default sgd,adam,vsgd,ivon,ivon-poco.
    #[arg(long, value_delimiter = ',')]
    pub optim: Vec<String>,
    /// Models of the step suite (comma-separated); default logreg,mlp,convnet.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Cases of the fusion suite (comma-separated); default chain20,xent,xent-grad,mlp-fwdbwd.
    #[arg(long, value_delimiter = ',')]
    pub case: Vec<String>,
    /// Rows of the fusion suite's cross-entropy logits ([rows, 1000]).
    #[arg(long, default_value_t = XENT_ROWS)]
    pub xent_rows: usize,
    /// Elements per optimizer step (flat tensor, and the sum of the 200 mixed tensors),
    /// and of the fusion suite's elementwise chain.
    #[arg(long, default_value_t = DEFAULT_SIZE)]
    pub size: usize,
    /// Batch size of the step suite.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Timed repetitions per case (after warm-up runs).
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Backend (only `cpu` exists so far).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.backend == "cpu",
        "unknown backend `{}`; only `cpu` can be benchmarked so far",
        args.backend
    );
    anyhow::ensure!(
        matches!(args.suite.as_str(), "optim" | "step" | "fusion" | "all"),
        "unknown suite `{}`; valid suites: optim, step, fusion, all",
        args.suite
    );
    anyhow::ensure!(args.reps > 0, "--reps must be at least 1");
    let optimizers: Vec<String> = if args.optim.is_empty() {
        OPTIM_SUITE.iter().map(|s| s.to_string()).collect()
    } else {
        args.optim.clone()
    };
    let warmup = (args.reps / 5).clamp(2, 10);
    let mut log = |s: &str| eprintln!("  {s}");
    let (copy_gbps, triad) = measure_triad(args.size, warmup, args.reps).context("measuring the triad reference")?;
    eprintln!(
        "triad a*s+b over {} elements: {:.3} ms, {copy_gbps:.2} GB/s",
        args.size, triad.median_ms
    );
    let mut results = Vec::new();
    if matches!(args.suite.as_str(), "optim" | "all") {
        let cfg = OptimSuite {
            optimizers: optimizers.clone(),
            size: args.size,
            warmup,
            reps: args.reps,
        };
        results.extend(run_optim_suite(&cfg, copy_gbps, &mut log)?);
    }
    if matches!(args.suite.as_str(), "step" | "all") {
        let models: Vec<String> = if args.model.is_empty() {
            kiln_models::nets::MODELS.iter().map(|s| s.to_string()).collect()
        } else {
            args.model.clone()
        };
        let cfg = StepSuite {
            models,
            optimizers,
            batch: args.batch,
            warmup,
            reps: args.reps,
        };
        results.extend(run_step_suite(&cfg, &mut log)?);
    }
    if matches!(args.suite.as_str(), "fusion" | "all") {
        let cfg = FusionSuite {
            cases: if args.case.is_empty() {
                FUSION_CASES.iter().map(|s| s.to_string()).collect()
            } else {
                args.case.clone()
            },
            size: args.size,
            rows: args.xent_rows,
            batch: args.batch,
            warmup,
            reps: args.reps,
        };
        results.extend(run_fusion_suite(&cfg, copy_gbps, &mut log)?);
    }
    print!("{}", table(&results, copy_gbps));
    if let Some(path) = &args.json {
        let v = results_json(&results, copy_gbps);
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
