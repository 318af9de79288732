//! Training support: checkpoints, metrics files and plots. The trainer loop that drives
//! a compiled step lives in `trainer.rs`.

pub mod checkpoint;
pub mod metrics;
pub mod plot;
pub mod trainer;

pub use checkpoint::{Checkpoint, CheckpointError, NamedTensor};
pub use metrics::{EpochMetrics, RunMetrics};
pub use trainer::{train, TrainConfig, TrainError, TrainTask};
