//! The `optim replay` trace format: parsing and structural validation of the JSON a user
//! writes (or exports from another framework). Owns the format and its error messages;
//! it does not know optimizers' graphs (`replay` checks the tensors against those).
//!
//! ```text
//! {"optimizer": "vsgd",                           // sgd|adam|adamw|vsgd|constant-vsgd|ivon|svrg|ivon-poco
//!  "hyper": {"lr": 0.03, "kg": 20.0, "nesterov": true, "clip_radius": "inf"},
//!  "params": {"layer.weight": {"shape": [7, 5], "data": [35 numbers, row-major]}, ...},
//!  "state":  {"layer.weight.ivon.hess": {"shape": [7, 5], "data": [...]}},   // optional
//!  "grads":  [{"layer.weight": [35 numbers], ...}, ...],                    // one object per step
//!  "noise":  [{"layer.weight": [35 numbers], ...}, ...],                    // optional (ivon, ivon-poco)
//!  "start_step": 1,                                                         // optional: t of the first step
//!  "refresh": [{"before_step": 0,                                            // svrg, ivon-poco
//!               "batches": [{"weight": 0.5, "grads": {...}, "noise": {...}}, ...]}]}
//! ```
//!
//! Keys inside a step's `grads`/`noise` are parameter names; optimizers with several
//! evaluation points take the others as `<param>@<label>` (`w@snapshot` for SVRG's
//! gradient at the snapshot, `w@anchor` for IVON-PoCo's anchor sample, `w@sample1` for
//! IVON's second MC sample). A refresh batch's `weight` defaults to 1/|batches|.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::replay::ReplayError;

/// A tensor given in a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorData {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Per-name flat arrays (one step's gradients or noise).
pub type Arrays = BTreeMap<String, Vec<f64>>;

/// One micro-batch of a refresh.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshBatch {
    pub weight: f64,
    pub grads: Arrays,
    pub noise: Option<Arrays>,
}

/// A refresh run before step `before_step` (0-based).
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshSpec {
    pub before_step: usize,
    pub batches: Vec<RefreshBatch>,
}

/// A parsed trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub optimizer: String,
    pub hyper: Vec<(String, f64)>,
    pub params: BTreeMap<String, TensorData>,
    pub state: BTreeMap<String, TensorData>,
    pub grads: Vec<Arrays>,
    pub noise: Option<Vec<Arrays>>,
    pub refresh: Vec<RefreshSpec>,
    /// The step number t of the first replayed step (1 unless the trace starts mid-run).
    pub start_step: u64,
}

fn err(path: impl Into<String>, detail: impl Into<String>) -> ReplayError {
    ReplayError::Trace {
        path: path.into(),
        detail: detail.into(),
    }
}

fn object<'a>(v: &'a Json, path: &str) -> Result<&'a Map<String, Json>, ReplayError> {
    v.as_object().ok_or_else(|| err(path, "expected a JSON object"))
}

fn only_keys(m: &Map<String, Json>, path: &str, allowed: &[&str]) -> Result<(), ReplayError> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(
                path,
                format!("unknown key `{k}`; valid keys: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn numbers(v: &Json, path: &str) -> Result<Vec<f64>, ReplayError> {
    let arr = v.as_array().ok_or_else(|| err(path, "expected an array of numbers"))?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| {
            let n = x
                .as_f64()
                .ok_or_else(|| err(format!("{path}[{i}]"), format!("expected a number, got {x}")))?;
            if n.is_finite() {
                Ok(n)
            } else {
                Err(err(format!("{path}[{i}]"), "must be finite"))
            }
        })
        .collect()
}

fn tensor(v: &Json, path: &str) -> Result<TensorData, ReplayError> {
    let m = object(v, path)?;
    only_keys(m, path, &["shape", "data"])?;
    let shape_v = m.get("shape").ok_or_else(|| err(path, "missing `shape`"))?;
    let shape = shape_v
        .as_array()
        .ok_or_else(|| err(format!("{path}.shape"), "expected an array of dimensions"))?
        .iter()
        .map(|d| {
            d.as_u64().and_then(|d| usize::try_from(d).ok()).ok_or_else(|| {
                err(
                    format!("{path}.shape"),
                    format!("dimension {d} is not a non-negative integer"),
                )
            })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let data = numbers(
        m.get("data").ok_or_else(|| err(path, "missing `data`"))?,
        &format!("{path}.data"),
    )?;
    let numel: usize = shape.iter().product();
    if data.len() != numel {
        return Err(err(
            format!("{path}.data"),
            format!("{} numbers given, but shape {shape:?} holds {numel}", data.len()),
        ));
    }
    Ok(TensorData { shape, data })
}

fn tensors(v: &Json, path: &str) -> Result<BTreeMap<String, TensorData>, ReplayError> {
    object(v, path)?
        .iter()
        .map(|(k, t)| Ok((k.clone(), tensor(t, &format!("{path}[\"{k}\"]"))?)))
        .collect()
}

fn arrays(v: &Json, path: &str) -> Result<Arrays, ReplayError> {
    object(v, path)?
        .iter()
        .map(|(k, a)| Ok((k.clone(), numbers(a, &format!("{path}[\"{k}\"]"))?)))
        .collect()
}

fn array_list(v: &Json, path: &str) -> Result<Vec<Arrays>, ReplayError> {
    v.as_array()
        .ok_or_else(|| err(path, "expected an array with one object per step"))?
        .iter()
        .enumerate()
        .map(|(i, s)| arrays(s, &format!("{path}[{i}]")))
        .collect()
}

fn hyper_value(v: &Json, path: &str) -> Result<f64, ReplayError> {
    match v {
        Json::Bool(b) => Ok(*b as u8 as f64),
        Json::Number(n) => n.as_f64().ok_or_else(|| err(path, "number out of range")),
        Json::String(s) => super::hyper::parse_value(s)
            .ok_or_else(|| err(path, format!("`{s}` is not a number (strings may be \"inf\")"))),
        other => Err(err(path, format!("expected a number, a bool or \"inf\", got {other}"))),
    }
}

fn refresh(v: &Json, path: &str) -> Result<RefreshSpec, ReplayError> {
    let m = object(v, path)?;
    only_keys(m, path, &["before_step", "batches"])?;
    let before_step = m
        .get("before_step")
        .and_then(Json::as_u64)
        .and_then(|s| usize::try_from(s).ok())
        .ok_or_else(|| {
            err(
                path,
                "`before_step` must be a non-negative integer (0-based step index)",
            )
        })?;
    let list = m
        .get("batches")
        .and_then(Json::as_array)
        .ok_or_else(|| err(path, "`batches` must be an array of micro-batches"))?;
    if list.is_empty() {
        return Err(err(
            format!("{path}.batches"),
            "a refresh needs at least one micro-batch",
        ));
    }
    let default_weight = 1.0 / list.len() as f64;
    let batches = list
        .iter()
        .enumerate()
        .map(|(i, bv)| {
            let bp = format!("{path}.batches[{i}]");
            let bm = object(bv, &bp)?;
            only_keys(bm, &bp, &["weight", "grads", "noise"])?;
            let weight = match bm.get("weight") {
                None => default_weight,
                Some(w) => {
                    let w = hyper_value(w, &format!("{bp}.weight"))?;
                    if !(w.is_finite() && w >= 0.0) {
                        return Err(err(format!("{bp}.weight"), "must be finite and >= 0"));
                    }
                    w
                }
            };
            let grads = arrays(
                bm.get("grads").ok_or_else(|| err(&bp, "missing `grads`"))?,
                &format!("{bp}.grads"),
            )?;
            let noise = bm.get("noise").map(|n| arrays(n, &format!("{bp}.noise"))).transpose()?;
            Ok(RefreshBatch { weight, grads, noise })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RefreshSpec { before_step, batches })
}

/// Explain a JSON syntax error; Python's `json` writes `NaN`/`Infinity` for non-finite
/// floats, which is not JSON, so say so.
fn syntax_error(text: &str, e: serde_json::Error) -> ReplayError {
    let line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
    let col = e.column().saturating_sub(1);
    let rest: String = line.chars().skip(col).take(9).collect();
    let rest = rest.trim_start_matches('-');
    if rest.starts_with("NaN") || rest.starts_with("Infinity") {
        return err(
            format!("line {} column {}", e.line(), e.column()),
            "the trace contains NaN or Infinity (Python's json writes them for non-finite floats); \
             every input must be a finite number",
        );
    }
    ReplayError::Json(e.to_string())
}

impl Trace {
    /// Parse and structurally validate a trace (tensor lengths against their shapes,
    /// finite numbers, known keys). Names are checked against the optimizer's graph by
    /// `replay`.
    pub fn parse(text: &str) -> Result<Trace, ReplayError> {
        let root: Json = serde_json::from_str(text).map_err(|e| syntax_error(text, e))?;
        let m = object(&root, "trace")?;
        only_keys(
            m,
            "trace",
            &[
                "optimizer",
                "hyper",
                "params",
                "state",
                "grads",
                "noise",
                "refresh",
                "start_step",
            ],
        )?;
        let optimizer = m
            .get("optimizer")
            .and_then(Json::as_str)
            .ok_or_else(|| err("optimizer", "missing or not a string (e.g. \"vsgd\")"))?
            .to_string();
        let hyper = match m.get("hyper") {
            None => Vec::new(),
            Some(h) => object(h, "hyper")?
                .iter()
                .map(|(k, v)| Ok((k.clone(), hyper_value(v, &format!("hyper[\"{k}\"]"))?)))
                .collect::<Result<_, ReplayError>>()?,
        };
        let params = tensors(m.get("params").ok_or_else(|| err("params", "missing"))?, "params")?;
        if params.is_empty() {
            return Err(err("params", "no parameters given"));
        }
        let state = match m.get("state") {
            None => BTreeMap::new(),
            Some(s) => tensors(s, "state")?,
        };
        let grads = array_list(m.get("grads").ok_or_else(|| err("grads", "missing"))?, "grads")?;
        let noise = m.get("noise").map(|n| array_list(n, "noise")).transpose()?;
        if let Some(n) = &noise {
            if n.len() != grads.len() {
                return Err(err(
                    "noise",
                    format!(
                        "{} noise objects for {} steps of gradients; give one per step",
                        n.len(),
                        grads.len()
                    ),
                ));
            }
        }
        let mut refresh = match m.get("refresh") {
            None => Vec::new(),
            Some(r) => r
                .as_array()
                .ok_or_else(|| err("refresh", "expected an array of refreshes"))?
                .iter()
                .enumerate()
                .map(|(i, x)| self::refresh(x, &format!("refresh[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
        };
        refresh.sort_by_key(|r| r.before_step);
        for w in refresh.windows(2) {
            if w[0].before_step == w[1].before_step {
                return Err(err(
                    "refresh",
                    format!("two refreshes before step {}", w[0].before_step),
                ));
            }
        }
        if let Some(r) = refresh.iter().find(|r| r.before_step >= grads.len().max(1)) {
            return Err(err(
                "refresh",
                format!(
                    "refresh before step {} but the trace has {} steps",
                    r.before_step,
                    grads.len()
                ),
            ));
        }
        let start_step = match m.get("start_step") {
            None => 1,
            Some(v) => v
                .as_u64()
                .filter(|&s| s >= 1)
                .ok_or_else(|| err("start_step", format!("must be an integer >= 1, got {v}")))?,
        };
        Ok(Trace {
            start_step,
            optimizer,
            hyper,
            params,
            state,
            grads,
            noise,
            refresh,
        })
    }
}
