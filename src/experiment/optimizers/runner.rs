//! One training run of the `optimizers` experiment: a model + optimizer at one learning
//! rate and seed, compiled through `CompiledTask` (the same wiring as `kiln train`) and
//! driven epoch by epoch, evaluating on the validation and test splits after every
//! epoch. For VSGD it also reads the optimizer state (`<param>.vsgd.bg`, `.vsgd.bh`)
//! and records the distribution of the per-element effective momentum
//! β₁ = B_h/(B_g + B_h) after the first step and after every epoch.
//!
//! A diverged run (non-finite loss) is recorded as such and ends early; it is a result
//! of the sweep, not an error. Owns the loop and the records; no statistics, no files.

use std::time::Instant;

use kiln_models::{nets, optim};
use kiln_runtime::compile::CompileOptions;
use kiln_runtime::data::{Batch, Dataset};
use kiln_runtime::train::{TrainError, TrainTask};
use serde_json::{json, Value as Json};

use super::plan::{Arm, BETA1_LOG_MIN};
use crate::train_task::{CompiledTask, LrSchedule};

/// What one run trains.
pub struct RunSpec<'a> {
    pub model: &'a str,
    pub arm: &'a Arm,
    pub lr: f64,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub decay_at: &'a [f64],
    pub decay_factor: f64,
    /// Histogram bins for β₁ (VSGD only).
    pub beta1_bins: usize,
}

/// Metrics after one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Learning rate used in this epoch (after the step decay).
    pub lr: f64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Wall time of the epoch including evaluation.
    pub seconds: f64,
}

/// The distribution of β₁ = B_h/(B_g + B_h) over every element of every parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Beta1Snapshot {
    /// Epoch completed (0 = after the very first step).
    pub epoch: usize,
    pub step: u64,
    pub elements: usize,
    pub mean: f64,
    /// 5th, 25th, 50th, 75th and 95th percentiles.
    pub quantiles: [f64; 5],
    /// Counts of log10(1 − β₁) in equal bins over [BETA1_LOG_MIN, 0] (clamped).
    pub log_histogram: Vec<u64>,
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub model: String,
    pub arm: String,
    pub optimizer: String,
    pub lr: f64,
    pub seed: u64,
    pub hyper: Vec<(String, f64)>,
    pub epochs: Vec<EpochRecord>,
    /// Why the run stopped early (non-finite loss), if it did.
    pub diverged: Option<String>,
    pub beta1: Vec<Beta1Snapshot>,
    /// (loss, accuracy) of the final parameters over the whole training split (finished
    /// runs only): the generalisation gap is test minus this.
    pub final_train: Option<(f64, f64)>,
    pub kernels: usize,
    pub compile_seconds: f64,
    pub wall_seconds: f64,
}

impl RunRecord {
    /// The last epoch's metrics, if the run finished every epoch.
    pub fn finished(&self) -> Option<&EpochRecord> {
        if self.diverged.is_some() {
            return None;
        }
        self.epochs.last()
    }

    pub fn to_json(&self) -> Json {
        let epochs: Vec<Json> = self
            .epochs
            .iter()
            .map(|e| {
                json!({
                    "epoch": e.epoch, "lr": e.lr, "train_loss": e.train_loss,
                    "val_loss": e.val_loss, "val_accuracy": e.val_accuracy,
                    "test_loss": e.test_loss, "test_accuracy": e.test_accuracy, "seconds": e.seconds,
                })
            })
            .collect();
        let beta1: Vec<Json> = self
            .beta1
            .iter()
            .map(|b| {
                json!({
                    "epoch": b.epoch, "step": b.step, "elements": b.elements, "mean": b.mean,
                    "quantiles": {"p05": b.quantiles[0], "p25": b.quantiles[1], "p50": b.quantiles[2],
                                  "p75": b.quantiles[3], "p95": b.quantiles[4]},
                    "log10_one_minus_beta1_histogram": b.log_histogram,
                })
            })
            .collect();
        let best = self.epochs.iter().map(|e| e.test_accuracy).fold(f64::NAN, f64::max);
        json!({
            "model": self.model, "arm": self.arm, "optimizer": self.optimizer, "lr": self.lr, "seed": self.seed,
            "hyper": self.hyper.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "diverged": self.diverged,
            "final_test_accuracy": self.finished().map(|e| e.test_accuracy),
            "final_val_accuracy": self.finished().map(|e| e.val_accuracy),
            "final_train_eval": self.final_train.map(|(l, a)| json!({"loss": l, "accuracy": a})),
            "best_test_accuracy": if best.is_nan() { None } else { Some(best) },
            "kernels": self.kernels, "compile_seconds": self.compile_seconds, "wall_seconds": self.wall_seconds,
            "epochs": epochs,
            "beta1": beta1,
        })
    }
}

impl RunRecord {
    /// Reads back a record written by [`RunRecord::to_json`] (None if a field is missing),
    /// so an interrupted experiment can reuse the runs it already finished.
    pub fn from_json(v: &Json) -> Option<RunRecord> {
        let f = |v: &Json, k: &str| v.get(k).and_then(Json::as_f64);
        let epochs = v
            .get("epochs")?
            .as_array()?
            .iter()
            .map(|e| {
                Some(EpochRecord {
                    epoch: e.get("epoch")?.as_u64()? as usize,
                    lr: f(e, "lr")?,
                    train_loss: f(e, "train_loss")?,
                    val_loss: f(e, "val_loss")?,
                    val_accuracy: f(e, "val_accuracy")?,
                    test_loss: f(e, "test_loss")?,
                    test_accuracy: f(e, "test_accuracy")?,
                    seconds: f(e, "seconds")?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let beta1 = v
            .get("beta1")?
            .as_array()?
            .iter()
            .map(|b| {
                let q = b.get("quantiles")?;
                Some(Beta1Snapshot {
                    epoch: b.get("epoch")?.as_u64()? as usize,
                    step: b.get("step")?.as_u64()?,
                    elements: b.get("elements")?.as_u64()? as usize,
                    mean: f(b, "mean")?,
                    quantiles: [f(q, "p05")?, f(q, "p25")?, f(q, "p50")?, f(q, "p75")?, f(q, "p95")?],
                    log_histogram: b
                        .get("log10_one_minus_beta1_histogram")?
                        .as_array()?
                        .iter()
                        .map(Json::as_u64)
                        .collect::<Option<Vec<_>>>()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let final_train = match v.get("final_train_eval")? {
            Json::Null => None,
            t => Some((f(t, "loss")?, f(t, "accuracy")?)),
        };
        Some(RunRecord {
            model: v.get("model")?.as_str()?.into(),
            arm: v.get("arm")?.as_str()?.into(),
            optimizer: v.get("optimizer")?.as_str()?.into(),
            lr: f(v, "lr")?,
            seed: v.get("seed")?.as_u64()?,
            hyper: v
                .get("hyper")?
                .as_object()?
                .iter()
                .map(|(k, x)| Some((k.clone(), x.as_f64()?)))
                .collect::<Option<Vec<_>>>()?,
            epochs,
            diverged: v.get("diverged")?.as_str().map(str::to_string),
            beta1,
            final_train,
            kernels: v.get("kernels")?.as_u64()? as usize,
            compile_seconds: f(v, "compile_seconds")?,
            wall_seconds: f(v, "wall_seconds")?,
        })
    }
}

/// Mean loss and accuracy of the task's current parameters over `set`.
fn evaluate(task: &mut CompiledTask, set: &Dataset, batch_size: usize) -> Result<(f64, f64), TrainError> {
    let mut batches = set.eval_batches(batch_size)?;
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

/// The β₁ distribution of every `*.vsgd.bg` / `*.vsgd.bh` pair in the step's state.
fn beta1_snapshot(task: &CompiledTask, epoch: usize, step: u64, bins: usize) -> anyhow::Result<Beta1Snapshot> {
    let exe = task.step_executable();
    let mut names: Vec<String> = exe
        .persistent_names()
        .into_iter()
        .filter(|n| n.ends_with(".vsgd.bg"))
        .collect();
    names.sort();
    if names.is_empty() {
        anyhow::bail!("the VSGD step has no `<param>.vsgd.bg` state; cannot compute the effective momentum");
    }
    let mut betas = Vec::new();
    for bg_name in &names {
        let bh_name = format!("{}.vsgd.bh", bg_name.trim_end_matches(".vsgd.bg"));
        let bg = exe.get(bg_name)?;
        let bh = exe.get(&bh_name)?;
        betas.extend(bg.data.iter().zip(&bh.data).filter_map(|(&g, &h)| {
            let b = h / (g + h);
            b.is_finite().then_some(b)
        }));
    }
    Ok(summarise_beta1(&betas, epoch, step, bins))
}

/// Mean, quantiles and log10(1 − β₁) histogram of `betas` (finite values in [0, 1]).
pub fn summarise_beta1(betas: &[f64], epoch: usize, step: u64, bins: usize) -> Beta1Snapshot {
    let mut sorted = betas.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
    };
    let n = bins.max(1);
    let mut hist = vec![0u64; n];
    for &b in &sorted {
        let x = (1.0 - b).max(0.0).log10().max(BETA1_LOG_MIN);
        let k = ((x - BETA1_LOG_MIN) / -BETA1_LOG_MIN * n as f64) as usize;
        hist[k.min(n - 1)] += 1;
    }
    Beta1Snapshot {
        epoch,
        step,
        elements: sorted.len(),
        mean: sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
        quantiles: [q(0.05), q(0.25), q(0.5), q(0.75), q(0.95)],
        log_histogram: hist,
    }
}

/// Train `spec` on `train`, evaluating on `val` and `test` after every epoch.
pub fn train_one(spec: &RunSpec, train: &Dataset, val: &Dataset, test: &Dataset) -> anyhow::Result<RunRecord> {
    let started = Instant::now();
    let model = nets::by_name(spec.model, train.sample_shape(), train.num_classes())?;
    let mut optimizer = optim::by_name(&spec.arm.optimizer)?;
    for (k, v) in &spec.arm.fixed {
        optimizer.set(k, *v)?;
    }
    optimizer.set("lr", spec.lr)?;
    optimizer.check()?;
    let hyper = optimizer
        .hyper()
        .values()
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect();
    let options = CompileOptions {
        seed: spec.seed,
        ..Default::default()
    };
    let mut task = CompiledTask::new(model.as_ref(), optimizer, spec.batch_size, &options)?;
    let schedule = LrSchedule::StepDecay {
        at: spec.decay_at.to_vec(),
        factor: spec.decay_factor,
    };
    task.set_schedule(schedule.clone(), spec.epochs);
    let mut record = RunRecord {
        model: spec.model.into(),
        arm: spec.arm.label.clone(),
        optimizer: spec.arm.optimizer.clone(),
        lr: spec.lr,
        seed: spec.seed,
        hyper,
        epochs: Vec::new(),
        diverged: None,
        beta1: Vec::new(),
        final_train: None,
        kernels: task.step_executable().launches(),
        compile_seconds: task.compile_seconds(),
        wall_seconds: 0.0,
    };
    let vsgd = spec.arm.optimizer == "vsgd";
    let mut batch = Batch::default();
    let mut step = 0u64;
    'epochs: for epoch in 1..=spec.epochs {
        let epoch_start = Instant::now();
        task.on_epoch_start(train, spec.batch_size, spec.seed, epoch)?;
        let mut batches = train.train_batches(spec.batch_size, spec.seed, epoch as u64)?;
        let (mut loss_sum, mut steps) = (0.0, 0u64);
        while batches.next_into(&mut batch) {
            step += 1;
            let loss = task.train_step(&batch, step)?;
            if !loss.is_finite() {
                record.diverged = Some(format!("loss {loss} at step {step} (epoch {epoch})"));
                break 'epochs;
            }
            loss_sum += loss;
            steps += 1;
            if vsgd && step == 1 {
                record.beta1.push(beta1_snapshot(&task, 0, step, spec.beta1_bins)?);
            }
        }
        let (val_loss, val_accuracy) = evaluate(&mut task, val, spec.batch_size)?;
        let (test_loss, test_accuracy) = evaluate(&mut task, test, spec.batch_size)?;
        record.epochs.push(EpochRecord {
            epoch,
            lr: spec.lr * schedule.factor(epoch, spec.epochs),
            train_loss: loss_sum / steps.max(1) as f64,
            val_loss,
            val_accuracy,
            test_loss,
            test_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
        if vsgd {
            record.beta1.push(beta1_snapshot(&task, epoch, step, spec.beta1_bins)?);
        }
    }
    if record.diverged.is_none() {
        record.final_train = Some(evaluate(&mut task, train, spec.batch_size)?);
    }
    record.wall_seconds = started.elapsed().as_secs_f64();
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let r = RunRecord {
            model: "mlp".into(),
            arm: "vsgd".into(),
            optimizer: "vsgd".into(),
            lr: 0.003,
            seed: 2,
            hyper: vec![("kg".into(), 30.0), ("lr".into(), 0.003)],
            epochs: vec![EpochRecord {
                epoch: 1,
                lr: 0.003,
                train_loss: 0.5,
                val_loss: 0.4,
                val_accuracy: 0.81,
                test_loss: 0.45,
                test_accuracy: 0.8,
                seconds: 3.25,
            }],
            diverged: None,
            beta1: vec![summarise_beta1(&[0.5, 0.6, 0.99], 1, 430, 4)],
            final_train: Some((0.3, 0.9)),
            kernels: 14,
            compile_seconds: 0.1,
            wall_seconds: 4.0,
        };
        assert_eq!(RunRecord::from_json(&r.to_json()), Some(r.clone()));
        let diverged = RunRecord {
            diverged: Some("loss NaN at step 3 (epoch 1)".into()),
            final_train: None,
            ..r
        };
        assert_eq!(RunRecord::from_json(&diverged.to_json()), Some(diverged));
        assert_eq!(RunRecord::from_json(&json!({"model": "mlp"})), None);
    }

    #[test]
    fn beta1_summary_bins_and_quantiles() {
        // 1 - beta1 at bin centres 10^-0.5 .. 10^-3.5 (and one exact 1, clamped to the lowest bin).
        let betas: Vec<f64> = [-0.5f64, -1.5, -2.5, -3.5]
            .iter()
            .map(|x| 1.0 - 10f64.powf(*x))
            .chain([1.0])
            .collect();
        let s = summarise_beta1(&betas, 3, 42, 6);
        assert_eq!(s.elements, 5);
        assert_eq!((s.epoch, s.step), (3, 42));
        // Bins of width 1 over [-6, 0]: -0.5 -> bin 5, -1.5 -> 4, -2.5 -> 3, -3.5 -> 2, clamp -6 -> 0.
        assert_eq!(s.log_histogram, vec![1, 0, 1, 1, 1, 1]);
        assert!((s.quantiles[2] - betas[2]).abs() < 1e-12);
        assert!((s.mean - betas.iter().sum::<f64>() / 5.0).abs() < 1e-12);
    }
}
