//! The `optimizers` experiment's PNG plots (plotters, bitmap backend, the runtime's
//! embedded font): mean curves at each optimizer's selected learning rate, the
//! learning-rate sweep, and VSGD's effective-momentum (β₁) distribution over training.
//! Owns drawing only; the numbers come from `report` and the run records.

use std::path::Path;

use plotters::prelude::*;

use super::plan::BETA1_LOG_MIN;
use super::report::{mean_curve, ArmSummary};
use super::runner::RunRecord;

type PlotResult = Result<(), Box<dyn std::error::Error>>;

const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(148, 103, 189),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// (lo, hi) of finite `values` with a margin; `fallback` when there are none.
fn range(values: impl Iterator<Item = f64>, margin: f64, fallback: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return fallback;
    }
    let pad = ((hi - lo) * margin).max(1e-6);
    (lo - pad, hi + pad)
}

fn wrap(path: &Path, r: PlotResult) -> anyhow::Result<()> {
    r.map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
}

/// Test accuracy (mean ± std band over seeds) and training loss (mean) per epoch, one
/// line per optimizer at its selected learning rate.
pub fn curves(path: &Path, title: &str, summary: &[ArmSummary], records: &[RunRecord]) -> anyhow::Result<()> {
    wrap(path, draw_curves(path, title, summary, records))
}

fn draw_curves(path: &Path, title: &str, summary: &[ArmSummary], records: &[RunRecord]) -> PlotResult {
    kiln_runtime::train::plot::ensure_font();
    let root = BitMapBackend::new(path, (1100, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(550);
    let series: Vec<(usize, &str, f64)> = summary
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.selected_cell().map(|c| (i, a.label.as_str(), c.lr)))
        .collect();
    let acc: Vec<Vec<(usize, f64, f64)>> = series
        .iter()
        .map(|(_, arm, lr)| mean_curve(records, arm, *lr, |e| e.test_accuracy * 100.0))
        .collect();
    let loss: Vec<Vec<(usize, f64, f64)>> = series
        .iter()
        .map(|(_, arm, lr)| mean_curve(records, arm, *lr, |e| e.train_loss))
        .collect();
    let epochs = acc.iter().map(|c| c.len()).max().unwrap_or(1).max(1) as f64;

    let (lo, hi) = range(
        acc.iter().flatten().flat_map(|&(_, m, s)| [m - s, m + s]),
        0.05,
        (0.0, 100.0),
    );
    let mut chart = ChartBuilder::on(&left)
        .margin(12)
        .caption("test accuracy (mean ± std over seeds)", ("sans-serif", 15))
        .x_label_area_size(32)
        .y_label_area_size(50)
        .build_cartesian_2d(0.5..epochs + 0.5, lo..hi)?;
    chart.configure_mesh().x_desc("epoch").y_desc("%").draw()?;
    for ((i, arm, lr), c) in series.iter().zip(&acc) {
        let col = colour(*i);
        let mut band: Vec<(f64, f64)> = c.iter().map(|&(e, m, s)| (e as f64, m + s)).collect();
        band.extend(c.iter().rev().map(|&(e, m, s)| (e as f64, m - s)));
        chart.draw_series(std::iter::once(Polygon::new(band, col.mix(0.15).filled())))?;
        chart
            .draw_series(LineSeries::new(c.iter().map(|&(e, m, _)| (e as f64, m)), col.stroke_width(2)).point_size(3))?
            .label(format!("{arm} (lr {lr})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    let (lo, hi) = range(loss.iter().flatten().map(|&(_, m, _)| m), 0.05, (0.0, 1.0));
    let mut chart = ChartBuilder::on(&right)
        .margin(12)
        .caption("training loss (mean over seeds)", ("sans-serif", 15))
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5..epochs + 0.5, lo.max(0.0)..hi)?;
    chart.configure_mesh().x_desc("epoch").y_desc("cross-entropy").draw()?;
    for ((i, arm, _), c) in series.iter().zip(&loss) {
        let col = colour(*i);
        chart
            .draw_series(LineSeries::new(c.iter().map(|&(e, m, _)| (e as f64, m)), col.stroke_width(2)).point_size(3))?
            .label(arm.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Final validation and test accuracy against log10(lr), error bars = std over seeds.
pub fn sweep(path: &Path, title: &str, summary: &[ArmSummary]) -> anyhow::Result<()> {
    wrap(path, draw_sweep(path, title, summary))
}

fn draw_sweep(path: &Path, title: &str, summary: &[ArmSummary]) -> PlotResult {
    kiln_runtime::train::plot::ensure_font();
    let root = BitMapBackend::new(path, (1100, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(550);
    let xs = summary.iter().flat_map(|a| a.cells.iter().map(|c| c.lr.log10()));
    let (xlo, xhi) = range(xs, 0.08, (-4.0, 0.0));
    for (area, caption, pick) in [
        (&left, "final validation accuracy (selects lr)", 0usize),
        (&right, "final test accuracy", 1usize),
    ] {
        let get = |c: &super::report::Cell| if pick == 0 { c.val } else { c.test };
        let ys = summary.iter().flat_map(|a| {
            a.cells
                .iter()
                .flat_map(|c| [(get(c).0 - get(c).1) * 100.0, (get(c).0 + get(c).1) * 100.0])
        });
        let (lo, hi) = range(ys, 0.08, (0.0, 100.0));
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .caption(caption, ("sans-serif", 15))
            .x_label_area_size(32)
            .y_label_area_size(50)
            .build_cartesian_2d(xlo..xhi, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("learning rate (log scale)")
            .y_desc("%")
            .x_label_formatter(&|x| format!("{:.0e}", 10f64.powf(*x)))
            .draw()?;
        for (i, a) in summary.iter().enumerate() {
            let col = colour(i);
            let pts: Vec<(f64, f64, f64)> = a
                .cells
                .iter()
                .filter(|c| get(c).0.is_finite())
                .map(|c| (c.lr.log10(), get(c).0 * 100.0, get(c).1 * 100.0))
                .collect();
            for &(x, m, s) in &pts {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x, m - s), (x, m + s)],
                    col.stroke_width(2),
                )))?;
            }
            chart
                .draw_series(LineSeries::new(pts.iter().map(|&(x, m, _)| (x, m)), col.stroke_width(2)).point_size(4))?
                .label(a.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
            if let Some(c) = a.selected_cell() {
                let (x, y) = (c.lr.log10(), get(c).0 * 100.0);
                chart.draw_series(std::iter::once(Circle::new((x, y), 8, col.stroke_width(2))))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The β₁ plots' coordinate u = −log10(1 − β₁): grows with β₁, equal steps per decade
/// of 1 − β₁ (0.9 → 1, 0.99 → 2, ...).
fn beta1_coord(b: f64) -> f64 {
    -(1.0 - b).max(10f64.powf(BETA1_LOG_MIN)).log10()
}

/// Tick label at coordinate `u`: the β₁ value, with enough decimals to tell the ticks
/// apart near 1.
fn beta1_label(u: f64) -> String {
    let decimals = (u.ceil().max(0.0) as usize + 2).clamp(2, 8);
    format!("{:.*}", decimals, 1.0 - 10f64.powf(-u))
}

/// VSGD's effective momentum: left, the histogram of log10(1 − β₁) over all parameter
/// elements at a few points of the selected run (seed 0); right, the median and the
/// 5th/95th percentiles of β₁ per epoch for every swept learning rate (seed 0).
pub fn beta1(path: &Path, title: &str, selected: &RunRecord, per_lr: &[&RunRecord]) -> anyhow::Result<()> {
    wrap(path, draw_beta1(path, title, selected, per_lr))
}

fn draw_beta1(path: &Path, title: &str, selected: &RunRecord, per_lr: &[&RunRecord]) -> PlotResult {
    kiln_runtime::train::plot::ensure_font();
    let root = BitMapBackend::new(path, (1100, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(550);

    // Snapshots to show: after step 1, epoch 1, and about a quarter, half, three
    // quarters and all of the run (deduplicated).
    let snaps = &selected.beta1;
    let last = snaps.iter().map(|s| s.epoch).max().unwrap_or(0);
    let mut want: Vec<usize> = vec![0, 1, last / 4, last / 2, (3 * last) / 4, last];
    want.sort_unstable();
    want.dedup();
    let shown: Vec<_> = want
        .iter()
        .filter_map(|&e| snaps.iter().find(|s| s.epoch == e))
        .collect();
    let bins = shown.first().map(|s| s.log_histogram.len()).unwrap_or(1).max(1);
    let width = -BETA1_LOG_MIN / bins as f64;
    // Bin k of log10(1 − β₁) covers u in [u_hi − width, u_hi] with u_hi = 6 − k·width.
    let bin_hi = |k: usize| -BETA1_LOG_MIN - k as f64 * width;
    let used: Vec<usize> = shown
        .iter()
        .flat_map(|s| (0..s.log_histogram.len()).filter(move |&k| s.log_histogram[k] > 0))
        .collect();
    let (ulo, uhi) = match (used.iter().max(), used.iter().min()) {
        (Some(&kmax), Some(&kmin)) => ((bin_hi(kmax) - 2.0 * width).max(0.0), bin_hi(kmin) + width),
        _ => (0.0, -BETA1_LOG_MIN),
    };
    let frac = |s: &super::runner::Beta1Snapshot, k: usize| s.log_histogram[k] as f64 / s.elements.max(1) as f64;
    let ymax = shown
        .iter()
        .flat_map(|s| (0..s.log_histogram.len()).map(move |k| frac(s, k)))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.08;
    let mut chart = ChartBuilder::on(&left)
        .margin(12)
        .caption(
            format!(
                "histogram over all {} elements (lr {}, seed {})",
                shown.first().map(|s| s.elements).unwrap_or(0),
                selected.lr,
                selected.seed
            ),
            ("sans-serif", 14),
        )
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(ulo..uhi, 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_desc("β₁ = B_h/(B_g+B_h) (axis: −log10(1 − β₁); bins 1/10 decade)")
        .y_desc("fraction of elements")
        .x_label_formatter(&|x| beta1_label(*x))
        .draw()?;
    for (j, s) in shown.iter().enumerate() {
        let col = colour(j);
        // A step outline: each bin's fraction held across its width.
        let pts: Vec<(f64, f64)> = (0..s.log_histogram.len())
            .rev()
            .flat_map(|k| [(bin_hi(k) - width, frac(s, k)), (bin_hi(k), frac(s, k))])
            .collect();
        let label = if s.epoch == 0 {
            format!("after step 1 (median β₁ {:.4})", s.quantiles[2])
        } else {
            format!("after epoch {} (median β₁ {:.4})", s.epoch, s.quantiles[2])
        };
        chart
            .draw_series(LineSeries::new(pts, col.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;

    let log = beta1_coord;
    let ys = per_lr
        .iter()
        .flat_map(|r| r.beta1.iter().flat_map(|s| [log(s.quantiles[0]), log(s.quantiles[4])]));
    let (lo, hi) = range(ys, 0.05, (0.0, -BETA1_LOG_MIN));
    let emax = per_lr
        .iter()
        .flat_map(|r| r.beta1.iter().map(|s| s.epoch))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&right)
        .margin(12)
        .caption(
            "median (thick) and 5th/95th percentiles of β₁, seed 0",
            ("sans-serif", 14),
        )
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.2..emax + 0.2, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch (0 = after step 1)")
        .y_desc("β₁ (axis: −log10(1 − β₁))")
        .y_label_formatter(&|y| beta1_label(*y))
        .draw()?;
    for (j, r) in per_lr.iter().enumerate() {
        let col = colour(j);
        let line = |q: usize| r.beta1.iter().map(move |s| (s.epoch as f64, log(s.quantiles[q])));
        chart
            .draw_series(LineSeries::new(line(2), col.stroke_width(3)))?
            .label(format!("lr {}", r.lr))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(3)));
        chart.draw_series(LineSeries::new(line(0), col.stroke_width(1)))?;
        chart.draw_series(LineSeries::new(line(4), col.stroke_width(1)))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
