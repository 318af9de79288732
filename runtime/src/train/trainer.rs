//! The trainer loop: epochs over fixed-shape batches, a progress bar, per-epoch
//! evaluation, metrics files, plots and checkpoints, and exact resume.
//!
//! It is generic over a [`TrainTask`] — whatever runs one compiled training step and one
//! evaluation batch — so it knows nothing about models, optimizers or backends. Resume
//! is exact because everything random is a pure function of (seed, epoch, step):
//! batch order comes from `Dataset::train_batches(seed, epoch)`, optimizer noise from
//! Philox keyed by the step, and a checkpoint is written at every epoch boundary with
//! the parameters, the optimizer state, the step counter and the metrics so far.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use thiserror::Error;

use super::checkpoint::{Checkpoint, CheckpointError};
use super::metrics::{EpochMetrics, RunMetrics};
use crate::data::{Batch, DataError, Dataset, Splits};

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{0}")]
    Task(String),
    #[error("cannot write {path}: {detail}")]
    Output { path: PathBuf, detail: String },
    #[error(
        "the loss became {value} at step {step} (epoch {epoch}); lower the learning rate (--lr) or check the data"
    )]
    Diverged { value: f64, step: u64, epoch: usize },
    #[error("cannot resume: {0}")]
    Resume(String),
}

/// What the trainer drives: one compiled train step and one evaluation pass.
pub trait TrainTask {
    /// One optimizer step on a full batch; `step` is 1-based. Returns the mean loss.
    fn train_step(&mut self, batch: &Batch, step: u64) -> Result<f64, TrainError>;
    /// Over the batch's first `valid` rows: (sum of per-example losses, correct predictions).
    fn eval_batch(&mut self, batch: &Batch) -> Result<(f64, usize), TrainError>;
    /// Parameters and optimizer state under their graph names.
    fn save_state(&mut self) -> Result<Checkpoint, TrainError>;
    fn load_state(&mut self, checkpoint: &Checkpoint) -> Result<(), TrainError>;
    /// Seconds spent compiling so far (reported in the first epoch's summary).
    fn compile_seconds(&self) -> f64;
    /// Called before each epoch's first step (outer loops such as SVRG's full-gradient
    /// refresh run here). `seed` and `epoch` key any data order it needs.
    fn on_epoch_start(
        &mut self,
        train: &Dataset,
        batch_size: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<(), TrainError> {
        let _ = (train, batch_size, seed, epoch);
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Where metrics.json, metrics.csv, curves.png and checkpoint.safetensors go.
    pub out_dir: PathBuf,
    /// Draw a progress bar (hidden automatically when stderr is not a terminal).
    pub progress: bool,
    /// Print one summary line per epoch.
    pub verbose: bool,
}

const METRICS_KEY: &str = "metrics_json";

/// Train for `config.epochs` epochs (counting those already in `resume`).
pub fn train(
    task: &mut dyn TrainTask,
    data: &Splits,
    config: &TrainConfig,
    mut metrics: RunMetrics,
    resume: Option<&Path>,
) -> Result<RunMetrics, TrainError> {
    std::fs::create_dir_all(&config.out_dir).map_err(|e| TrainError::Output {
        path: config.out_dir.clone(),
        detail: e.to_string(),
    })?;
    let mut step: u64 = 0;
    let mut first_epoch = 1;
    if let Some(path) = resume {
        let ck = Checkpoint::load(path)?;
        task.load_state(&ck)?;
        step = counter(&ck, "step")? as u64;
        first_epoch = counter(&ck, "epoch")? as usize + 1;
        if let Some(text) = ck.metadata.get(METRICS_KEY) {
            let previous: RunMetrics = serde_json::from_str(text)
                .map_err(|e| TrainError::Resume(format!("{}: metrics: {e}", path.display())))?;
            metrics.epochs = previous.epochs;
        }
        if config.verbose {
            println!("resumed from {} at epoch {first_epoch}, step {step}", path.display());
        }
    }
    let steps_per_epoch = data.train.train_steps_per_epoch(config.batch_size) as u64;
    let mut batch = Batch::default();
    // Compile time not yet reported: the first epoch run in this process reports the
    // compile that happened before it.
    let mut compile_reported = 0.0;
    for epoch in first_epoch..=config.epochs {
        let started = Instant::now();
        task.on_epoch_start(&data.train, config.batch_size, config.seed, epoch)?;
        let bar = progress_bar(config, epoch, steps_per_epoch);
        let mut loss_sum = 0.0;
        let mut steps = 0u64;
        let mut batches = data.train.train_batches(config.batch_size, config.seed, epoch as u64)?;
        while batches.next_into(&mut batch) {
            step += 1;
            let loss = task.train_step(&batch, step)?;
            if !loss.is_finite() {
                bar.abandon();
                return Err(TrainError::Diverged {
                    value: loss,
                    step,
                    epoch,
                });
            }
            loss_sum += loss;
            steps += 1;
            bar.inc(1);
            if steps % 8 == 0 || steps == steps_per_epoch {
                let rate = steps as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("loss {:.4}  {rate:.0} steps/s", loss_sum / steps as f64));
            }
        }
        bar.finish_and_clear();
        let (test_loss, test_accuracy) = evaluate(task, data, config.batch_size)?;
        let m = EpochMetrics {
            epoch,
            train_loss: loss_sum / steps.max(1) as f64,
            test_loss,
            test_accuracy,
            seconds: started.elapsed().as_secs_f64(),
            steps,
            compile_seconds: task.compile_seconds() - compile_reported,
        };
        compile_reported = task.compile_seconds();
        if config.verbose {
            let compile = if m.compile_seconds > 0.0005 {
                format!("  (compile {:.2} s)", m.compile_seconds)
            } else {
                String::new()
            };
            println!(
                "epoch {:>3}/{}  train loss {:.4}  test loss {:.4}  test acc {:6.2}%  {:.1} s{compile}",
                epoch,
                config.epochs,
                m.train_loss,
                m.test_loss,
                m.test_accuracy * 100.0,
                m.seconds
            );
        }
        metrics.epochs.push(m);
        write_outputs(task, &metrics, config, step, epoch)?;
    }
    Ok(metrics)
}

/// Mean loss and accuracy over the whole test split (padded last batch masked out).
pub fn evaluate(task: &mut dyn TrainTask, data: &Splits, batch_size: usize) -> Result<(f64, f64), TrainError> {
    let mut batches = data.test.eval_batches(batch_size)?;
    let mut batch = Batch::default();
    let (mut loss, mut correct, mut n) = (0.0, 0usize, 0usize);
    while batches.next_into(&mut batch) {
        let (l, c) = task.eval_batch(&batch)?;
        loss += l;
        correct += c;
        n += batch.valid;
    }
    let n = n.max(1) as f64;
    Ok((loss / n, correct as f64 / n))
}

fn counter(ck: &Checkpoint, name: &str) -> Result<i64, TrainError> {
    ck.counters
        .get(name)
        .copied()
        .ok_or_else(|| TrainError::Resume(format!("the checkpoint has no `{name}` counter")))
}

fn progress_bar(config: &TrainConfig, epoch: usize, steps: u64) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{}", config.epochs));
    bar
}

fn write_outputs(
    task: &mut dyn TrainTask,
    metrics: &RunMetrics,
    config: &TrainConfig,
    step: u64,
    epoch: usize,
) -> Result<(), TrainError> {
    let out = |name: &str| config.out_dir.join(name);
    let io = |path: PathBuf| {
        move |e: std::io::Error| TrainError::Output {
            path,
            detail: e.to_string(),
        }
    };
    metrics
        .write_json(&out("metrics.json"))
        .map_err(io(out("metrics.json")))?;
    metrics.write_csv(&out("metrics.csv")).map_err(io(out("metrics.csv")))?;
    super::plot::write_curves(metrics, &out("curves.png")).map_err(|detail| TrainError::Output {
        path: out("curves.png"),
        detail,
    })?;
    let mut ck = task.save_state()?;
    ck.counters.insert("step".into(), step as i64);
    ck.counters.insert("epoch".into(), epoch as i64);
    ck.metadata.insert("model".into(), metrics.model.clone());
    ck.metadata.insert("optimizer".into(), metrics.optimizer.clone());
    ck.metadata.insert("seed".into(), config.seed.to_string());
    let json = serde_json::to_string(metrics).map_err(|e| TrainError::Output {
        path: out("checkpoint.safetensors"),
        detail: e.to_string(),
    })?;
    ck.metadata.insert(METRICS_KEY.into(), json);
    ck.save(&out("checkpoint.safetensors"))?;
    Ok(())
}
