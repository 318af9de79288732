//! A slow, obviously-correct f64 evaluator of kernel [`Program`]s: the oracle that pins
//! down the kernel IR's semantics for every code generator, and the checker of the
//! rules in the module doc of [`super`].
//!
//! It allocates every buffer (honouring `Storage::View`), poisons what is not bound with
//! NaN, binds inputs/params/state and runtime scalars by name, runs the kernels in order
//! exactly per the execution model, and returns the named outputs and the new values of
//! updated params/state. Values are computed in f64 with the reference interpreter's
//! rules (`kiln_ir::interp`): f32 values are never rounded, i32 arithmetic wraps, casts
//! use `DType::quantize`, max/min propagate NaN, dot products and reductions accumulate
//! sequentially in row-major order.
//!
//! Besides values it checks, and reports as [`EvalError`]: reads of elements nothing has
//! written yet, out-of-bounds indices, type errors, values used outside their stage,
//! races between outer points of a kernel, matmul epilogues that read `out` away from
//! their own element or write what the matmul reads, and output/update elements the
//! program never writes. It must never optimise at the cost of clarity and knows
//! nothing of graphs.

mod exec;
mod scalar;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Value};
use thiserror::Error;

use super::{BufferId, BufferRole, Kernel, Program, Storage};
use exec::{run_loop, run_matmul};

/// Everything that makes a program fail to evaluate (a kernel-IR producer's bug, or a
/// wrong binding).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    #[error("eval: {kind} `{name}` is not bound; bind a {dtype} value of {len} elements")]
    MissingBinding {
        kind: &'static str,
        name: String,
        len: usize,
        dtype: DType,
    },
    #[error("eval: `{name}` is bound to {got_len} {got_dtype} elements, but its buffer holds {len} {dtype}")]
    BindingMismatch {
        name: String,
        got_len: usize,
        got_dtype: DType,
        len: usize,
        dtype: DType,
    },
    #[error("eval: malformed program in `{kernel}`: {detail}")]
    Malformed { kernel: String, detail: String },
    #[error("eval: kernel `{kernel}` indexes {buffer} at {index}, outside 0..{len}")]
    OutOfBounds {
        kernel: String,
        buffer: BufferId,
        index: i64,
        len: usize,
    },
    #[error("eval: kernel `{kernel}` reads element {index} of {buffer} before anything wrote it")]
    UninitRead {
        kernel: String,
        buffer: BufferId,
        index: usize,
    },
    #[error("eval: kernel `{kernel}` races on element {index} of storage {buffer}: {detail}")]
    Race {
        kernel: String,
        buffer: BufferId,
        index: usize,
        detail: String,
    },
    #[error("eval: element {index} of {buffer} ({role:?}) is never written by the program")]
    Unwritten {
        buffer: BufferId,
        role: BufferRole,
        index: usize,
    },
}

pub(super) type Result<T> = std::result::Result<T, EvalError>;

/// What a program run produced. Values are flat (shape `[len]`): the kernel IR knows
/// buffer lengths, not shapes.
#[derive(Clone, Debug, Default)]
pub struct ProgramRun {
    /// Named outputs.
    pub outputs: HashMap<String, Value>,
    /// New values of updated params/state, by name.
    pub updates: HashMap<String, Value>,
}

impl ProgramRun {
    /// Write the new param/state values into `bindings`, keeping each binding's shape.
    pub fn apply_updates(&self, bindings: &mut Bindings) {
        for (name, v) in &self.updates {
            let mut v = v.clone();
            if let Some(old) = bindings.get(name) {
                if old.shape.numel() == v.data.len() {
                    v.shape = old.shape.clone();
                }
            }
            bindings.insert(name.clone(), v);
        }
    }
}

/// Evaluate `p` with `bindings` (inputs, params, state and runtime scalars by name).
pub fn eval_program(p: &Program, bindings: &Bindings) -> Result<ProgramRun> {
    let mut mem = Memory::new(p)?;
    mem.bind(p, bindings)?;
    let scalars = scalar_values(p, bindings)?;
    for k in &p.kernels {
        match k {
            Kernel::Loop(l) => run_loop(p, l, &scalars, &mut mem, None)?,
            Kernel::MatMul(m) => run_matmul(p, m, &scalars, &mut mem)?,
        }
    }
    let mut run = ProgramRun::default();
    for (i, b) in p.buffers.iter().enumerate() {
        if let BufferRole::Output(name) = &b.role {
            let id = BufferId(i as u32);
            run.outputs.insert(name.clone(), mem.read_all(p, id)?);
        }
    }
    for &(target, value) in &p.updates {
        let malformed = |detail: String| EvalError::Malformed {
            kernel: "updates".into(),
            detail,
        };
        let t = p
            .buffers
            .get(target.0 as usize)
            .ok_or_else(|| malformed(format!("no buffer {target}")))?;
        let v = p
            .buffers
            .get(value.0 as usize)
            .ok_or_else(|| malformed(format!("no buffer {value}")))?;
        let name = match &t.role {
            BufferRole::Param(n) | BufferRole::State(n) => n.clone(),
            r => return Err(malformed(format!("update target {target} is {r:?}, not a param/state"))),
        };
        if t.len != v.len || t.dtype != v.dtype {
            return Err(malformed(format!("update {target} <- {value}: lengths/dtypes differ")));
        }
        run.updates.insert(name, mem.read_all(p, value)?);
    }
    Ok(run)
}

/// A value with its dtype (F32, I32, Bool; F16/BF16 only as cast results).
#[derive(Clone, Copy, Debug)]
pub(super) struct V {
    pub(super) x: f64,
    pub(super) t: DType,
}

pub(super) fn malformed(kernel: &str, detail: impl Into<String>) -> EvalError {
    EvalError::Malformed {
        kernel: kernel.to_string(),
        detail: detail.into(),
    }
}

fn scalar_values(p: &Program, bindings: &Bindings) -> Result<Vec<V>> {
    p.scalars
        .iter()
        .map(|s| {
            let v = bindings.get(&s.name).ok_or_else(|| EvalError::MissingBinding {
                kind: "scalar",
                name: s.name.clone(),
                len: 1,
                dtype: s.dtype,
            })?;
            if v.data.len() != 1 || v.dtype != s.dtype {
                return Err(EvalError::BindingMismatch {
                    name: s.name.clone(),
                    got_len: v.data.len(),
                    got_dtype: v.dtype,
                    len: 1,
                    dtype: s.dtype,
                });
            }
            Ok(V {
                x: s.dtype.quantize(v.data[0]),
                t: s.dtype,
            })
        })
        .collect()
}

/// Storage: one f64 vector per `Own` buffer, with written flags; views resolved to
/// (root buffer, offset).
pub(super) struct Memory {
    data: Vec<Vec<f64>>,
    written: Vec<Vec<bool>>,
    pub(super) loc: Vec<(usize, usize)>,
}

impl Memory {
    fn new(p: &Program) -> Result<Self> {
        let n = p.buffers.len();
        let mut loc = Vec::with_capacity(n);
        for (i, _) in p.buffers.iter().enumerate() {
            let (mut cur, mut off) = (i, 0usize);
            let mut hops = 0;
            while let Storage::View { base, offset } = &p.buffers[cur].storage {
                let b = base.0 as usize;
                let inner = &p.buffers[cur];
                let Some(base_buf) = p.buffers.get(b) else {
                    return Err(malformed("buffers", format!("b{cur} views missing buffer {base}")));
                };
                if offset + inner.len > base_buf.len {
                    return Err(malformed(
                        "buffers",
                        format!(
                            "b{cur} = [{offset}, {}) of {base}, which has {}",
                            offset + inner.len,
                            base_buf.len
                        ),
                    ));
                }
                off += offset;
                cur = b;
                hops += 1;
                if hops > n {
                    return Err(malformed("buffers", format!("b{i} is part of a view cycle")));
                }
            }
            loc.push((cur, off));
        }
        let data = p
            .buffers
            .iter()
            .map(|b| match b.storage {
                Storage::Own => vec![f64::NAN; b.len],
                Storage::View { .. } => Vec::new(),
            })
            .collect();
        let written = p
            .buffers
            .iter()
            .map(|b| match b.storage {
                Storage::Own => vec![false; b.len],
                Storage::View { .. } => Vec::new(),
            })
            .collect();
        Ok(Memory { data, written, loc })
    }

    fn bind(&mut self, p: &Program, bindings: &Bindings) -> Result<()> {
        for (i, b) in p.buffers.iter().enumerate() {
            let (kind, name) = match &b.role {
                BufferRole::Input(n) => ("input", n),
                BufferRole::Param(n) => ("param", n),
                BufferRole::State(n) => ("state", n),
                _ => continue,
            };
            let v = bindings.get(name).ok_or_else(|| EvalError::MissingBinding {
                kind,
                name: name.clone(),
                len: b.len,
                dtype: b.dtype,
            })?;
            if v.data.len() != b.len || v.dtype != b.dtype {
                return Err(EvalError::BindingMismatch {
                    name: name.clone(),
                    got_len: v.data.len(),
                    got_dtype: v.dtype,
                    len: b.len,
                    dtype: b.dtype,
                });
            }
            let (root, off) = self.loc[i];
            for (e, &x) in v.data.iter().enumerate() {
                self.data[root][off + e] = b.dtype.quantize(x);
                self.written[root][off + e] = true;
            }
        }
        Ok(())
    }

    /// Root address of element `index` of `buf`, bounds-checked.
    pub(super) fn addr(&self, p: &Program, kernel: &str, buf: BufferId, index: i64) -> Result<(usize, usize)> {
        let b = p
            .buffers
            .get(buf.0 as usize)
            .ok_or_else(|| malformed(kernel, format!("no buffer {buf}")))?;
        if index < 0 || index as u64 >= b.len as u64 {
            return Err(EvalError::OutOfBounds {
                kernel: kernel.to_string(),
                buffer: buf,
                index,
                len: b.len,
            });
        }
        let (root, off) = self.loc[buf.0 as usize];
        Ok((root, off + index as usize))
    }

    pub(super) fn load(&self, kernel: &str, buf: BufferId, index: i64, a: (usize, usize)) -> Result<f64> {
        if !self.written[a.0][a.1] {
            return Err(EvalError::UninitRead {
                kernel: kernel.to_string(),
                buffer: buf,
                index: index as usize,
            });
        }
        Ok(self.data[a.0][a.1])
    }

    pub(super) fn store(&mut self, a: (usize, usize), x: f64) {
        self.data[a.0][a.1] = x;
        self.written[a.0][a.1] = true;
    }

    /// The whole buffer as a flat value; every element must have been written.
    fn read_all(&self, p: &Program, id: BufferId) -> Result<Value> {
        let b = &p.buffers[id.0 as usize];
        let (root, off) = self.loc[id.0 as usize];
        if let Some(e) = (0..b.len).find(|&e| !self.written[root][off + e]) {
            return Err(EvalError::Unwritten {
                buffer: id,
                role: b.role.clone(),
                index: e,
            });
        }
        Ok(Value {
            shape: vec![b.len].into(),
            dtype: b.dtype,
            data: self.data[root][off..off + b.len].to_vec(),
        })
    }
}
