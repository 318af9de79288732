//! Experiment `convex` (PoCo paper): being written.

use std::path::PathBuf;

use super::ExperimentOptions;

pub fn run(_opts: &ExperimentOptions) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::bail!("experiment `convex` is not implemented yet")
}
