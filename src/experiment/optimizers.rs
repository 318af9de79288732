//! Experiment `optimizers` (VSGD paper): being written.

use std::path::PathBuf;

use super::ExperimentOptions;

pub fn run(_opts: &ExperimentOptions) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::bail!("experiment `optimizers` is not implemented yet")
}
