//! Host memory of one executable kernel program: one allocation per `Storage::Own`
//! buffer (4-byte elements plus `SLACK_ELEMENTS` of padding the generated code may read
//! past the end), views resolved to pointers into their base, and the conversions
//! between interpreter `Value`s (f64 data) and the 4-byte encodings kernels use
//! (f32 bits, i32, bool as u32 0/1). It knows nothing of kernels or scheduling.

use kiln_compiler::codegen::clif::SLACK_ELEMENTS;
use kiln_compiler::kernel::{BufferId, Program, Storage};
use kiln_ir::{DType, Shape, Value};

use crate::error::RuntimeError;

/// The bit pattern written by [`Buffers::poison`]: a quiet NaN for f32 buffers, an
/// unlikely number for i32 buffers and an invalid (not 0/1) bool.
pub const POISON: u32 = 0x7FC0_0000;

pub struct Buffers {
    /// Backing storage of each `Own` buffer (empty for views).
    storage: Vec<Vec<u32>>,
    /// Resolved pointer of every buffer.
    ptrs: Vec<*mut u8>,
    lens: Vec<usize>,
    dtypes: Vec<DType>,
}

// SAFETY: the pointers point into `storage`, which `Buffers` owns; the heap blocks do
// not move when `Buffers` moves. Access is synchronised by `&mut self` (kernels run
// while the executable holds it mutably).
unsafe impl Send for Buffers {}
unsafe impl Sync for Buffers {}

fn encode(dtype: DType, x: f64) -> u32 {
    match dtype {
        DType::I32 => (DType::I32.quantize(x) as i32) as u32,
        DType::Bool => (x != 0.0) as u32,
        _ => (x as f32).to_bits(),
    }
}

fn decode(dtype: DType, raw: u32) -> f64 {
    match dtype {
        DType::I32 => raw as i32 as f64,
        DType::Bool => match raw {
            0 => 0.0,
            1 => 1.0,
            _ => f64::NAN, // never written (poison) or corrupt: make it visible
        },
        _ => f32::from_bits(raw) as f64,
    }
}

impl Buffers {
    /// Allocate every buffer of `p` (zeroed) and resolve views.
    pub fn new(p: &Program) -> Result<Buffers, RuntimeError> {
        let n = p.buffers.len();
        let mut storage = Vec::with_capacity(n);
        for b in &p.buffers {
            if matches!(b.dtype, DType::F16 | DType::BF16) {
                return Err(RuntimeError::Program(format!(
                    "buffer of storage dtype {} (the CPU backend holds 4-byte elements)",
                    b.dtype
                )));
            }
            storage.push(match b.storage {
                Storage::Own => vec![0u32; b.len + SLACK_ELEMENTS],
                Storage::View { .. } => Vec::new(),
            });
        }
        let mut ptrs = vec![std::ptr::null_mut(); n];
        for (i, ptr) in ptrs.iter_mut().enumerate() {
            let (mut cur, mut off, mut hops) = (i, 0usize, 0usize);
            while let Storage::View { base, offset } = &p.buffers[cur].storage {
                let bi = base.0 as usize;
                let Some(bb) = p.buffers.get(bi) else {
                    return Err(RuntimeError::Program(format!("b{cur} views missing buffer {base}")));
                };
                if offset + p.buffers[cur].len > bb.len {
                    return Err(RuntimeError::Program(format!(
                        "b{cur} = [{offset}, {}) of {base}, which has {} elements",
                        offset + p.buffers[cur].len,
                        bb.len
                    )));
                }
                off += offset;
                cur = bi;
                hops += 1;
                if hops > n {
                    return Err(RuntimeError::Program(format!("b{i} is part of a view cycle")));
                }
            }
            // SAFETY: off + len <= root len (checked hop by hop), inside the allocation.
            *ptr = unsafe { storage[cur].as_mut_ptr().add(off) as *mut u8 };
        }
        Ok(Buffers {
            storage,
            ptrs,
            lens: p.buffers.iter().map(|b| b.len).collect(),
            dtypes: p.buffers.iter().map(|b| b.dtype).collect(),
        })
    }

    /// The pointer table kernels take as their first argument.
    pub fn table(&self) -> *const *mut u8 {
        self.ptrs.as_ptr()
    }

    pub fn ptr(&self, id: BufferId) -> *mut u8 {
        self.ptrs[id.0 as usize]
    }

    pub fn len(&self, id: BufferId) -> usize {
        self.lens[id.0 as usize]
    }

    pub fn dtype(&self, id: BufferId) -> DType {
        self.dtypes[id.0 as usize]
    }

    fn words(&self, id: BufferId) -> &[u32] {
        // SAFETY: ptr points at `len` initialised u32s inside our storage.
        unsafe { std::slice::from_raw_parts(self.ptr(id) as *const u32, self.len(id)) }
    }

    fn words_mut(&mut self, id: BufferId) -> &mut [u32] {
        // SAFETY: as `words`; `&mut self` excludes other access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(id) as *mut u32, self.len(id)) }
    }

    /// Write `data` (f64 per element, the interpreter's encoding) into buffer `id`.
    /// The caller has checked the length.
    pub fn write(&mut self, id: BufferId, data: &[f64]) {
        let dtype = self.dtype(id);
        for (w, &x) in self.words_mut(id).iter_mut().zip(data) {
            *w = encode(dtype, x);
        }
    }

    /// Read buffer `id` as a value of `shape` (whose numel must equal the length).
    pub fn read(&self, id: BufferId, shape: Shape) -> Value {
        let dtype = self.dtype(id);
        Value {
            shape,
            dtype,
            data: self.words(id).iter().map(|&w| decode(dtype, w)).collect(),
        }
    }

    /// Fill buffer `id` with [`POISON`].
    pub fn poison(&mut self, id: BufferId) {
        self.words_mut(id).fill(POISON);
    }

    /// Copy buffer `src` into `dst` (same length; they may alias completely).
    pub fn copy(&mut self, dst: BufferId, src: BufferId) {
        let n = self.len(src).min(self.len(dst));
        let (d, s) = (self.ptr(dst) as *mut u32, self.ptr(src) as *const u32);
        if !std::ptr::eq(d, s) {
            // SAFETY: both ranges lie inside our storage; `copy` tolerates overlap.
            unsafe { std::ptr::copy(s, d, n) };
        }
    }

    /// Whether two buffers start at the same address (an aliased in-place update).
    pub fn same_memory(&self, a: BufferId, b: BufferId) -> bool {
        self.ptr(a) == self.ptr(b)
    }

    /// Total bytes allocated.
    pub fn bytes(&self) -> usize {
        self.storage.iter().map(|s| s.len() * 4).sum()
    }
}
