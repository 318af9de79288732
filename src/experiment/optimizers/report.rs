//! Statistics of the `optimizers` experiment: per (optimizer, learning rate) means and
//! standard deviations over seeds, the learning rate each optimizer is compared at
//! (highest mean final VALIDATION accuracy, so the test split never picks it), the mean
//! curves at that rate, and the Markdown tables written next to the JSON. Owns
//! arithmetic and text only: no training, no drawing.

use serde_json::{json, Value as Json};

use super::runner::RunRecord;

/// Mean and sample standard deviation (n − 1; 0 for a single value). NaN when empty.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() == 1 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// One (optimizer, learning rate) cell of the sweep, over its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub lr: f64,
    pub runs: usize,
    pub diverged: usize,
    /// Final-epoch validation accuracy, mean and std over the finished runs.
    pub val: (f64, f64),
    /// Final-epoch test accuracy.
    pub test: (f64, f64),
    /// Best test accuracy over epochs (reported, never used for selection).
    pub best_test: (f64, f64),
    /// Final-epoch mean training loss (running mean over the epoch's steps) and test loss.
    pub train_loss: (f64, f64),
    pub test_loss: (f64, f64),
    /// Loss and accuracy of the final parameters over the whole training split.
    pub train_eval_loss: (f64, f64),
    pub train_eval_accuracy: (f64, f64),
}

/// One optimizer's sweep and the learning rate it is compared at.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmSummary {
    pub label: String,
    pub cells: Vec<Cell>,
    /// Index into `cells` of the selected rate (None if every rate diverged).
    pub selected: Option<usize>,
}

impl ArmSummary {
    pub fn selected_cell(&self) -> Option<&Cell> {
        self.selected.map(|i| &self.cells[i])
    }
}

/// Group `records` of one model by arm (in `arms` order) and learning rate.
pub fn summarise(arms: &[(String, Vec<f64>)], records: &[RunRecord]) -> Vec<ArmSummary> {
    arms.iter()
        .map(|(label, lrs)| {
            let cells: Vec<Cell> = lrs
                .iter()
                .map(|&lr| {
                    let runs: Vec<&RunRecord> = records.iter().filter(|r| &r.arm == label && r.lr == lr).collect();
                    let done: Vec<_> = runs.iter().filter_map(|r| r.finished()).collect();
                    let best: Vec<f64> = runs
                        .iter()
                        .filter(|r| r.diverged.is_none())
                        .map(|r| r.epochs.iter().map(|e| e.test_accuracy).fold(f64::NAN, f64::max))
                        .collect();
                    let evals: Vec<(f64, f64)> = runs.iter().filter_map(|r| r.final_train).collect();
                    let of = |f: fn(&super::runner::EpochRecord) -> f64| {
                        mean_std(&done.iter().map(|e| f(e)).collect::<Vec<_>>())
                    };
                    Cell {
                        lr,
                        runs: runs.len(),
                        diverged: runs.len() - done.len(),
                        val: of(|e| e.val_accuracy),
                        test: of(|e| e.test_accuracy),
                        best_test: mean_std(&best),
                        train_loss: of(|e| e.train_loss),
                        test_loss: of(|e| e.test_loss),
                        train_eval_loss: mean_std(&evals.iter().map(|e| e.0).collect::<Vec<_>>()),
                        train_eval_accuracy: mean_std(&evals.iter().map(|e| e.1).collect::<Vec<_>>()),
                    }
                })
                .collect();
            let selected = cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.diverged == 0 && c.runs > 0 && c.val.0.is_finite())
                .max_by(|a, b| a.1.val.0.total_cmp(&b.1.val.0))
                .map(|(i, _)| i);
            ArmSummary {
                label: label.clone(),
                cells,
                selected,
            }
        })
        .collect()
}

/// Per-epoch mean and std over seeds of `f` for the finished runs of (`arm`, `lr`).
pub fn mean_curve(
    records: &[RunRecord],
    arm: &str,
    lr: f64,
    f: fn(&super::runner::EpochRecord) -> f64,
) -> Vec<(usize, f64, f64)> {
    let runs: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.arm == arm && r.lr == lr && r.diverged.is_none())
        .collect();
    let epochs = runs.iter().map(|r| r.epochs.len()).min().unwrap_or(0);
    (0..epochs)
        .map(|i| {
            let (m, s) = mean_std(&runs.iter().map(|r| f(&r.epochs[i])).collect::<Vec<_>>());
            (i + 1, m, s)
        })
        .collect()
}

fn pct((m, s): (f64, f64)) -> String {
    if m.is_finite() {
        format!("{:.2} ± {:.2}", m * 100.0, s * 100.0)
    } else {
        "—".into()
    }
}

fn num((m, s): (f64, f64)) -> String {
    if m.is_finite() {
        format!("{m:.4} ± {s:.4}")
    } else {
        "—".into()
    }
}

/// The sweep table: every (optimizer, lr) with val/test accuracy, losses, divergences.
pub fn sweep_table(summary: &[ArmSummary]) -> String {
    let mut s = String::from(
        "| optimizer | lr | runs (diverged) | final val acc % | final test acc % | best-epoch test acc % | final train loss | final test loss |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for a in summary {
        for (i, c) in a.cells.iter().enumerate() {
            let mark = if a.selected == Some(i) { " **(selected)**" } else { "" };
            s += &format!(
                "| {} | {}{mark} | {} ({}) | {} | {} | {} | {} | {} |\n",
                a.label,
                c.lr,
                c.runs,
                c.diverged,
                pct(c.val),
                pct(c.test),
                pct(c.best_test),
                num(c.train_loss),
                num(c.test_loss)
            );
        }
    }
    s
}

/// The comparison table: each optimizer at its selected rate.
pub fn best_table(summary: &[ArmSummary]) -> String {
    let mut s = String::from(
        "| optimizer | selected lr | seeds | final test acc % (mean ± std) | final val acc % | train acc % (final params) | train loss (final params) | test loss | gap: train − test acc (pt) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for a in summary {
        match a.selected_cell() {
            Some(c) => {
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
                    a.label,
                    c.lr,
                    c.runs,
                    pct(c.test),
                    pct(c.val),
                    pct(c.train_eval_accuracy),
                    num(c.train_eval_loss),
                    num(c.test_loss),
                    (c.train_eval_accuracy.0 - c.test.0) * 100.0
                )
            }
            None => s += &format!("| {} | — (every rate diverged) | | | | | | | |\n", a.label),
        }
    }
    s
}

/// The conv-net follow-up table (one run per optimizer).
pub fn conv_table(records: &[RunRecord], errors: &[(String, String)]) -> String {
    let mut s = String::from(
        "| optimizer | lr (from the MLP sweep) | epochs | final test acc % | final val acc % | final train loss | wall s |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in records {
        let last = r.epochs.last();
        let f = |v: Option<f64>, k: f64| v.map(|x| format!("{:.2}", x * k)).unwrap_or_else(|| "—".into());
        s += &format!(
            "| {} | {} | {}{} | {} | {} | {} | {:.0} |\n",
            r.arm,
            r.lr,
            r.epochs.len(),
            r.diverged
                .as_ref()
                .map(|d| format!(" (diverged: {d})"))
                .unwrap_or_default(),
            f(last.map(|e| e.test_accuracy), 100.0),
            f(last.map(|e| e.val_accuracy), 100.0),
            last.map(|e| format!("{:.4}", e.train_loss))
                .unwrap_or_else(|| "—".into()),
            r.wall_seconds
        );
    }
    for (arm, e) in errors {
        s += &format!("| {arm} | failed: {e} | | | | | |\n");
    }
    s
}

/// The summary as JSON (sweep cells and the selection).
pub fn summary_json(summary: &[ArmSummary]) -> Json {
    let pair = |(m, s): (f64, f64)| json!({"mean": if m.is_finite() { Some(m) } else { None }, "std": if s.is_finite() { Some(s) } else { None }});
    Json::Array(
        summary
            .iter()
            .map(|a| {
                json!({
                    "optimizer": a.label,
                    "selected_lr": a.selected_cell().map(|c| c.lr),
                    "sweep": a.cells.iter().map(|c| json!({
                        "lr": c.lr, "runs": c.runs, "diverged": c.diverged,
                        "final_val_accuracy": pair(c.val), "final_test_accuracy": pair(c.test),
                        "best_test_accuracy": pair(c.best_test), "final_train_loss": pair(c.train_loss),
                        "final_test_loss": pair(c.test_loss),
                        "final_train_eval_loss": pair(c.train_eval_loss),
                        "final_train_eval_accuracy": pair(c.train_eval_accuracy),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::optimizers::runner::EpochRecord;

    fn rec(arm: &str, lr: f64, seed: u64, val: f64, test: f64, diverged: bool) -> RunRecord {
        RunRecord {
            model: "mlp".into(),
            arm: arm.into(),
            optimizer: arm.into(),
            lr,
            seed,
            hyper: vec![],
            epochs: vec![EpochRecord {
                epoch: 1,
                lr,
                train_loss: 0.5,
                val_loss: 0.6,
                val_accuracy: val,
                test_loss: 0.7,
                test_accuracy: test,
                seconds: 1.0,
            }],
            diverged: diverged.then(|| "loss NaN".to_string()),
            beta1: vec![],
            final_train: (!diverged).then_some((0.4, test + 0.05)),
            kernels: 1,
            compile_seconds: 0.0,
            wall_seconds: 1.0,
        }
    }

    #[test]
    fn mean_std_is_the_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn selection_uses_validation_not_test_and_skips_divergence() {
        let records = vec![
            // lr 0.1: best test, worse validation.
            rec("a", 0.1, 0, 0.80, 0.95, false),
            rec("a", 0.1, 1, 0.82, 0.95, false),
            // lr 0.01: best validation.
            rec("a", 0.01, 0, 0.90, 0.85, false),
            rec("a", 0.01, 1, 0.88, 0.85, false),
            // lr 1.0: one seed diverged, never selected even with high validation.
            rec("a", 1.0, 0, 0.99, 0.99, false),
            rec("a", 1.0, 1, 0.0, 0.0, true),
        ];
        let s = summarise(&[("a".into(), vec![0.01, 0.1, 1.0])], &records);
        assert_eq!(s[0].selected_cell().unwrap().lr, 0.01);
        assert_eq!(s[0].cells[2].diverged, 1);
        assert!((s[0].cells[0].val.0 - 0.89).abs() < 1e-12);
        assert!(sweep_table(&s).contains("0.01 **(selected)**"));
        assert!(best_table(&s).contains("85.00 ± 0.00"));
        // Train accuracy of the final parameters is test + 5 pt in these records.
        assert!((s[0].cells[0].train_eval_accuracy.0 - 0.90).abs() < 1e-12);
        assert!(best_table(&s).contains("| 5.00 |"));
    }
}
