//! Per-epoch training metrics and their files: `metrics.json` (the schema documented
//! in the README) and `metrics.csv`. Owns serialisation only.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
    /// Steps run in this epoch.
    pub steps: u64,
    /// Compile time spent in this epoch (the first one compiles), seconds.
    pub compile_seconds: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    pub model: String,
    pub optimizer: String,
    pub dataset: String,
    pub backend: String,
    pub seed: u64,
    pub batch_size: usize,
    pub hyper: BTreeMap<String, f64>,
    pub epochs: Vec<EpochMetrics>,
}

impl RunMetrics {
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    pub fn csv(&self) -> String {
        let mut s = String::from("epoch,train_loss,test_loss,test_accuracy,seconds,steps,compile_seconds\n");
        for e in &self.epochs {
            s += &format!(
                "{},{},{},{},{:.3},{},{:.3}\n",
                e.epoch, e.train_loss, e.test_loss, e.test_accuracy, e.seconds, e.steps, e.compile_seconds
            );
        }
        s
    }

    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.csv())
    }
}
