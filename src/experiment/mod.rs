//! `kiln experiment`: the seed papers' central claims rerun at small scale, end to end,
//! each writing JSON results and plots into one output folder. This module owns the
//! registry of experiments and their shared options; each experiment lives in its own
//! file (or folder) and must only use the public library (train_task, step, runtime).
//!
//! | name | what | module |
//! |---|---|---|
//! | `optimizers` | VSGD vs Adam(W) vs SGD-momentum on MLP / conv net (VSGD paper) | [`optimizers`] |
//! | `convex` | IVON-PoCo vs IVON vs SVRG vs SGD vs Adam on logistic regression (PoCo paper, Fig. 3 analogue), plus SVRH | [`convex`] |

use std::path::PathBuf;

pub mod convex;
pub mod optimizers;

/// Options every experiment takes.
#[derive(Clone, Debug)]
pub struct ExperimentOptions {
    /// Where JSON results and plots go (created if missing).
    pub out_dir: PathBuf,
    /// CI-sized smoke run (checks the pipeline, not the science): under two minutes.
    pub quick: bool,
    /// Seeds to repeat each configuration with (None: the experiment's default).
    pub seeds: Option<usize>,
    /// Directory with full data sets (e.g. Fashion-MNIST IDX files), if installed.
    pub data_dir: Option<PathBuf>,
}

/// The experiments `kiln experiment` knows, with a one-line description each.
pub const EXPERIMENTS: &[(&str, &str)] = &[
    (
        "optimizers",
        "VSGD vs Adam(W) vs SGD-momentum: lr sweep, seeds, step decay, beta1 histogram",
    ),
    (
        "convex",
        "IVON-PoCo vs IVON vs SVRG vs SGD vs Adam on logistic regression: suboptimality curves, SVRH",
    ),
];

/// Run the experiment called `name`; returns the files it wrote.
pub fn run(name: &str, opts: &ExperimentOptions) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&opts.out_dir)
        .map_err(|e| anyhow::anyhow!("creating output folder {}: {e}", opts.out_dir.display()))?;
    match name {
        "optimizers" => optimizers::run(opts),
        "convex" => convex::run(opts),
        other => anyhow::bail!(
            "unknown experiment `{other}`; known experiments: {}",
            EXPERIMENTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}
