//! Differential checking of a rewritten graph against its original on the f64
//! reference interpreter: random bindings for every source (optionally sprinkled with
//! NaN, ±inf and ±0 to exercise the float policy) and an element-wise comparison of
//! every output (by name) and every update (by target name). Used by the rewriter's
//! optional self-check and by its tests. It must not rewrite anything.

use kiln_ir::interp::{evaluate, Bindings};
use kiln_ir::{DType, Graph, Value};

/// Deterministic 64-bit generator (splitmix64) for bindings.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Values for every source of `graph`: f32 uniform in [-2, 2) (with `special`, about
/// one element in six is NaN, ±inf, ±0 or 1), i32 in [-3, 3], bool 0/1. Runtime i32
/// scalars named like a seed or step get small non-negative values.
pub fn random_bindings(graph: &Graph, seed: u64, special: bool) -> Bindings {
    let mut rng = SplitMix(seed ^ 0x6b69_6c6e);
    let mut b = Bindings::new();
    for id in graph.ids() {
        let node = graph.node(id);
        let Some(name) = node.op.source_name() else { continue };
        let n = node.ty.shape.numel();
        let data: Vec<f64> = (0..n)
            .map(|_| match node.ty.dtype {
                DType::I32 => (rng.next() % 7) as f64 - 3.0,
                DType::Bool => (rng.next() % 2) as f64,
                _ => {
                    if special && rng.next().is_multiple_of(6) {
                        [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 1.0][(rng.next() % 6) as usize]
                    } else {
                        rng.unit() * 4.0 - 2.0
                    }
                }
            })
            .collect();
        let v = Value::new(node.ty.shape.clone(), node.ty.dtype, data).expect("length matches the shape");
        b.insert(name.to_string(), v);
    }
    b
}

/// Whether two elements agree: both NaN, or the same infinity, or finite and within
/// `rel_tol * max(1, |a|, |b|)` with the same sign bit when both are zero.
pub fn close(a: f64, b: f64, rel_tol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    if a == 0.0 && b == 0.0 {
        return a.is_sign_negative() == b.is_sign_negative();
    }
    (a - b).abs() <= rel_tol * 1f64.max(a.abs()).max(b.abs())
}

fn compare_values(what: &str, a: &Value, b: &Value, rel_tol: f64) -> Result<(), String> {
    if a.shape != b.shape || a.dtype != b.dtype {
        return Err(format!(
            "{what}: {}{} before, {}{} after",
            a.dtype, a.shape, b.dtype, b.shape
        ));
    }
    for (i, (&x, &y)) in a.data.iter().zip(&b.data).enumerate() {
        if !close(x, y, rel_tol) {
            return Err(format!("{what}: element {i} is {x} before and {y} after rewriting"));
        }
    }
    Ok(())
}

/// Evaluate both graphs on `bindings` and compare every output and update.
pub fn compare(before: &Graph, after: &Graph, bindings: &Bindings, rel_tol: f64) -> Result<(), String> {
    let ea = evaluate(before, bindings).map_err(|e| format!("evaluating the original: {e}"))?;
    let eb = evaluate(after, bindings).map_err(|e| format!("evaluating the rewritten graph: {e}"))?;
    for (name, _) in before.outputs() {
        let a = ea
            .output(before, name)
            .ok_or(format!("output `{name}` missing before"))?;
        let b = eb
            .output(after, name)
            .ok_or(format!("output `{name}` missing after rewriting"))?;
        compare_values(&format!("output `{name}`"), a, b, rel_tol)?;
    }
    for (target, _) in before.updates() {
        let name = before.node(*target).op.source_name().unwrap_or_default();
        let a = ea
            .updated(before, name)
            .ok_or(format!("update of `{name}` missing before"))?;
        let b = eb
            .updated(after, name)
            .ok_or(format!("update of `{name}` missing after rewriting"))?;
        compare_values(&format!("update of `{name}`"), a, b, rel_tol)?;
    }
    if after.outputs().len() != before.outputs().len() || after.updates().len() != before.updates().len() {
        return Err("the rewritten graph has a different number of outputs or updates".into());
    }
    Ok(())
}

/// Compare on `seeds` random binding sets, half of them with NaN/±inf/±0.
pub fn check(before: &Graph, after: &Graph, seeds: u64, rel_tol: f64) -> Result<(), String> {
    for seed in 0..seeds {
        let b = random_bindings(before, seed, seed % 2 == 1);
        compare(before, after, &b, rel_tol).map_err(|e| format!("seed {seed}: {e}"))?;
    }
    Ok(())
}
