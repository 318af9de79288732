//! A stable structural hash of a graph: the same graph gives the same 64-bit value in
//! every run and on every machine (FNV-1a over a canonical byte encoding; std's
//! `Hasher`s are not guaranteed stable). Used as the compile-cache key.

use crate::graph::Graph;
use crate::op::{Init, Op};

/// FNV-1a, 64 bit.
#[derive(Clone, Copy)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHasher {
    pub fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    pub fn str(&mut self, s: &str) {
        self.usize(s.len());
        self.bytes(s.as_bytes());
    }
    pub fn usizes(&mut self, v: &[usize]) {
        self.usize(v.len());
        v.iter().for_each(|&x| self.usize(x));
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

fn hash_init(h: &mut StableHasher, init: &Init) {
    match init {
        Init::Zeros => h.u64(0),
        Init::Constant(c) => {
            h.u64(1);
            h.f64(*c)
        }
        Init::Uniform { low, high } => {
            h.u64(2);
            h.f64(*low);
            h.f64(*high)
        }
        Init::Normal { mean, std } => {
            h.u64(3);
            h.f64(*mean);
            h.f64(*std)
        }
        Init::KaimingUniform { fan_in } => {
            h.u64(4);
            h.usize(*fan_in)
        }
        Init::KaimingNormal { fan_in } => {
            h.u64(5);
            h.usize(*fan_in)
        }
        Init::XavierUniform { fan_in, fan_out } => {
            h.u64(6);
            h.usize(*fan_in);
            h.usize(*fan_out)
        }
    }
}

fn hash_op(h: &mut StableHasher, op: &Op) {
    // The printed name distinguishes every variant and sub-op; payloads follow.
    h.str(op.name());
    match op {
        Op::Input { name } | Op::Scalar { name } => h.str(name),
        Op::Param { name, init } | Op::State { name, init } => {
            h.str(name);
            hash_init(h, init)
        }
        Op::Const { value } => h.f64(*value),
        Op::Iota { axis } | Op::ArgMax { axis } | Op::Concat { axis } => h.usize(*axis),
        Op::Random { dist, stream } => {
            h.str(&format!("{dist:?}"));
            h.u64(*stream as u64)
        }
        Op::PowConst { exponent } => h.f64(*exponent),
        Op::Reduce { axes, keepdims, .. } => {
            h.usizes(axes);
            h.u64(*keepdims as u64)
        }
        Op::Permute { perm } => h.usizes(perm),
        Op::Slice { starts, ends, steps } => {
            h.usizes(starts);
            h.usizes(ends);
            h.usizes(steps)
        }
        Op::Pad { low, high, value } => {
            h.usizes(low);
            h.usizes(high);
            h.f64(*value)
        }
        Op::OneHot { depth } => h.usize(*depth),
        Op::Unfold2d(w) | Op::Fold2d { window: w, .. } => {
            h.usizes(&w.kernel);
            h.usizes(&w.stride);
            h.usizes(&w.padding);
            if let Op::Fold2d { size, .. } = op {
                h.usizes(size)
            }
        }
        _ => {}
    }
}

/// Structural hash of nodes, outputs and updates.
pub fn structural_hash(g: &Graph) -> u64 {
    let mut h = StableHasher::default();
    h.usize(g.len());
    for node in g.nodes() {
        hash_op(&mut h, &node.op);
        h.usizes(&node.inputs.iter().map(|i| i.index()).collect::<Vec<_>>());
        h.usizes(node.ty.shape.dims());
        h.u64(node.ty.dtype.code() as u64);
    }
    for (name, id) in g.outputs() {
        h.str(name);
        h.usize(id.index());
    }
    for (t, v) in g.updates() {
        h.usize(t.index());
        h.usize(v.index());
    }
    h.finish()
}

impl Graph {
    /// See [`structural_hash`].
    pub fn structural_hash(&self) -> u64 {
        structural_hash(self)
    }
}
