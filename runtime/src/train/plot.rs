//! Training curves as a PNG (plotters, bitmap backend): loss (train and test) and test
//! accuracy per epoch, side by side. Text is drawn with an embedded DejaVu Sans font so
//! no system font library is needed. Owns drawing only.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::metrics::RunMetrics;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font as "sans-serif" (once per process); call before drawing
/// any plot with text (the experiments' plots use it too).
pub fn ensure_font() {
    REGISTER.call_once(|| {
        // The font is a valid TTF compiled into the binary; registration only fails on
        // an invalid font, in which case text is simply not drawn.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Draw `curves.png`-style plots of a run to `path` (PNG, 1000x420).
pub fn write_curves(metrics: &RunMetrics, path: &Path) -> Result<(), String> {
    draw(metrics, path).map_err(|e| format!("drawing {}: {e}", path.display()))
}

fn draw(m: &RunMetrics, path: &Path) -> PlotResult {
    ensure_font();
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("{} + {} on {}", m.model, m.optimizer, m.dataset);
    let root = root.titled(&title, ("sans-serif", 20))?;
    let (left, right) = root.split_horizontally(500);
    let epochs = m.epochs.len().max(1) as f64;
    let x_max = epochs.max(1.0) + 0.0;

    let losses: Vec<f64> = m
        .epochs
        .iter()
        .flat_map(|e| [e.train_loss, e.test_loss])
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = losses
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo * 0.95, hi * 1.05)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&left)
        .margin(12)
        .caption("loss", ("sans-serif", 16))
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(0.5..x_max + 0.5, lo..hi)?;
    chart.configure_mesh().x_desc("epoch").y_desc("cross-entropy").draw()?;
    let series = |f: fn(&super::metrics::EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        m.epochs.iter().map(|e| (e.epoch as f64, f(e))).collect()
    };
    chart
        .draw_series(LineSeries::new(series(|e| e.train_loss), BLUE.stroke_width(2)).point_size(3))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(series(|e| e.test_loss), RED.stroke_width(2)).point_size(3))?
        .label("test")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let accs: Vec<f64> = m.epochs.iter().map(|e| e.test_accuracy * 100.0).collect();
    let (alo, ahi) = accs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (alo, ahi) = if alo.is_finite() && ahi > alo {
        ((alo - 2.0).max(0.0), (ahi + 2.0).min(100.0))
    } else {
        (0.0, 100.0)
    };
    let mut chart = ChartBuilder::on(&right)
        .margin(12)
        .caption("test accuracy", ("sans-serif", 16))
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(0.5..x_max + 0.5, alo..ahi)?;
    chart.configure_mesh().x_desc("epoch").y_desc("%").draw()?;
    chart.draw_series(LineSeries::new(series(|e| e.test_accuracy * 100.0), GREEN.stroke_width(2)).point_size(3))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::metrics::EpochMetrics;

    #[test]
    fn writes_a_png() {
        let mut m = RunMetrics {
            model: "mlp".into(),
            optimizer: "vsgd".into(),
            dataset: "digits".into(),
            ..Default::default()
        };
        for e in 1..=4 {
            m.epochs.push(EpochMetrics {
                epoch: e,
                train_loss: 1.0 / e as f64,
                test_loss: 1.2 / e as f64,
                test_accuracy: 0.5 + 0.1 * e as f64,
                seconds: 1.0,
                steps: 10,
                compile_seconds: 0.0,
            });
        }
        let path = std::env::temp_dir().join(format!("kiln-curves-{}.png", std::process::id()));
        write_curves(&m, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 5000, "a real plot, not an empty image");
        std::fs::remove_file(&path).ok();
    }
}
