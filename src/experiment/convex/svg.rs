//! Minimal SVG line charts for experiment `convex`: side-by-side panels with a linear x
//! axis and a log10 y axis, polylines, point markers and dashed vertical marker lines
//! (the outer full-gradient passes). Written by hand so the plots need no font or
//! image library; owns drawing only.

use std::fmt::Write as _;
use std::path::Path;

/// Line colours, cycled by series index.
pub const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];

/// One line of a panel.
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
    /// Points drawn as hollow circles (refresh ends).
    pub markers: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// One chart.
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// x positions of dashed vertical lines.
    pub vlines: Vec<f64>,
    /// Values below this are drawn at it (the f64 evaluation floor).
    pub y_floor: f64,
}

const PW: f64 = 560.0;
const PH: f64 = 380.0;
const ML: f64 = 70.0;
const MR: f64 = 20.0;
const MT: f64 = 40.0;
const MB: f64 = 50.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn nice_step(range: f64) -> f64 {
    let raw = range / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn draw_panel(out: &mut String, p: &Panel, ox: f64) {
    let (x0, y0) = (ox + ML, MT);
    let (w, h) = (PW - ML - MR, PH - MT - MB);
    let xs = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0));
    let x_max = xs.fold(0.0f64, f64::max).max(1e-9);
    let ys: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.1.max(p.y_floor)))
        .filter(|v| v.is_finite())
        .collect();
    let lo = ys.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (dlo, dhi) = if lo.is_finite() && hi.is_finite() {
        (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0))
    } else {
        (-1.0, 0.0)
    };
    let sx = |x: f64| x0 + x / x_max * w;
    let sy = |y: f64| {
        let l = y.max(p.y_floor).max(1e-300).log10().clamp(dlo, dhi);
        y0 + h - (l - dlo) / (dhi - dlo) * h
    };
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" font-size="15">{}</text>"##,
        x0 + w / 2.0,
        y0 - 14.0,
        esc(&p.title)
    );
    // y ticks: every decade (every k-th when there are many).
    let decades = (dhi - dlo) as i64;
    let stride = ((decades as f64) / 8.0).ceil().max(1.0) as i64;
    let mut dec = dlo as i64;
    while dec <= dhi as i64 {
        let y = sy(10f64.powi(dec as i32));
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end" font-size="11">1e{dec}</text>"##,
            x0 + w,
            x0 - 5.0,
            y + 4.0
        );
        dec += stride;
    }
    let step = nice_step(x_max);
    let mut t = 0.0;
    while t <= x_max * 1.0001 {
        let x = sx(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#333"/><text x="{x}" y="{}" text-anchor="middle" font-size="11">{}</text>"##,
            y0 + h,
            y0 + h + 5.0,
            y0 + h + 18.0,
            fmt_num(t)
        );
        t += step;
    }
    for &v in &p.vlines {
        if v > 0.0 && v <= x_max {
            let x = sx(v);
            let _ = writeln!(
                out,
                r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{}" stroke="#999" stroke-dasharray="3,4" stroke-width="0.8"/>"##,
                y0 + h
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" font-size="12">{}</text>"##,
        x0 + w / 2.0,
        y0 + h + 38.0,
        esc(&p.x_label)
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" font-size="12" transform="rotate(-90 {} {})">{}</text>"##,
        ox + 16.0,
        y0 + h / 2.0,
        ox + 16.0,
        y0 + h / 2.0,
        esc(&p.y_label)
    );
    for s in &p.series {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|q| q.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if s.dashed { r#" stroke-dasharray="6,3""# } else { "" };
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{}" stroke-width="1.8"{dash} points="{}"/>"##,
            s.color,
            pts.join(" ")
        );
        for &(x, y) in &s.markers {
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.6" fill="white" stroke="{}"/>"##,
                sx(x),
                sy(y),
                s.color
            );
        }
    }
    // Legend under the frame, two columns.
    let top = y0 + h + 52.0;
    for (i, s) in p.series.iter().enumerate() {
        let lx = x0 + (i % 2) as f64 * (w / 2.0);
        let ly = top + (i / 2) as f64 * 16.0;
        let dash = if s.dashed { r#" stroke-dasharray="6,3""# } else { "" };
        let _ = writeln!(
            out,
            r##"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}" font-size="11">{}</text>"##,
            ly - 4.0,
            lx + 20.0,
            ly - 4.0,
            s.color,
            lx + 25.0,
            ly,
            esc(&s.label)
        );
    }
}

/// Height of the legend under a panel.
fn legend_height(p: &Panel) -> f64 {
    p.series.len().div_ceil(2) as f64 * 16.0 + 10.0
}

/// Write `panels` side by side under `title` to `path` (SVG).
pub fn write(path: &Path, title: &str, panels: &[Panel], note: &str) -> std::io::Result<()> {
    let width = PW * panels.len() as f64;
    let legend = panels.iter().map(legend_height).fold(0.0, f64::max);
    let height = PH + 50.0 + legend;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif">"##
    );
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="{}" y="22" text-anchor="middle" font-size="17">{}</text>"##,
        width / 2.0,
        esc(title)
    );
    out.push_str(r#"<g transform="translate(0,20)">"#);
    for (i, p) in panels.iter().enumerate() {
        draw_panel(&mut out, p, i as f64 * PW);
    }
    out.push_str("</g>\n");
    let _ = writeln!(
        out,
        r##"<text x="10" y="{}" font-size="11" fill="#555">{}</text>"##,
        height - 8.0,
        esc(note)
    );
    out.push_str("</svg>\n");
    std::fs::write(path, out)
}
