//! Running a compiled kernel program on a GPU: device buffers for every buffer of the
//! program (parameters, state and intermediates stay on the device between runs),
//! launches in program order per the launch table, host <-> device copies only for
//! bound inputs/params/state and for results read back. Owns device memory and
//! launches; compiling belongs to `super::step::CudaCode` (one compiled program can be
//! loaded by many executors, as `kiln_runtime::compile` does for every `Executable`).
//!
//! **Not verified on a GPU.** This file is written against cudarc 0.19.10's driver API
//! and compiles, but no machine this code was developed on had a GPU: nothing here has
//! been run. Everything before it (code generation, NVRTC, cubins, the ptxas report) is
//! tested without one; the generated kernels' logic is tested under host emulation
//! (`compiler/tests/cuda_emulate.rs`).
//!
//! Memory: one allocation per `Storage::Own` buffer (4-byte elements), views resolved
//! to (allocation, element offset); kernel arguments are raw device addresses (the
//! launch table's ABI), passed by value. Everything runs on the context's default
//! stream, so kernels, copies and read-backs are ordered without events. Program
//! `updates` whose value buffer does not already alias its target are copied device
//! to device after the last kernel.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::sys::cudaError_enum;
use cudarc::driver::{
    result as drv, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DriverError, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use kiln_compiler::codegen::cuda::{CudaOptions, KernelArg};
use kiln_compiler::kernel::{BufferId, BufferRole, Program, Storage};
use kiln_ir::{DType, Value};

use super::device::{sm_arch, DeviceInfo};
use super::error::{CudaError, Result};
use super::step::CudaCode;
use super::{CompiledProgram, KernelCache};

fn drv_err(call: &'static str) -> impl Fn(DriverError) -> CudaError {
    move |e| CudaError::Driver {
        call,
        detail: format!("{e:?}"),
    }
}

/// Where a buffer's element 0 lives: (allocation index, element offset).
fn resolve(p: &Program, id: BufferId) -> (usize, usize) {
    let (mut cur, mut off) = (id.0 as usize, 0usize);
    for _ in 0..=p.buffers.len() {
        match &p.buffers[cur].storage {
            Storage::View { base, offset } => {
                off += offset;
                cur = base.0 as usize;
            }
            Storage::Own => break,
        }
    }
    (cur, off)
}

/// The 4-byte device representation of a value of `dtype`.
fn to_bits(dtype: DType, x: f64) -> u32 {
    match dtype {
        DType::I32 => DType::I32.quantize(x) as i32 as u32,
        DType::Bool => (x != 0.0) as u32,
        _ => (x as f32).to_bits(),
    }
}

fn from_bits(dtype: DType, w: u32) -> f64 {
    match dtype {
        DType::I32 => w as i32 as f64,
        DType::Bool => (w != 0) as u32 as f64,
        _ => f32::from_bits(w) as f64,
    }
}

/// A program loaded on one GPU with its memory.
pub struct CudaExecutor {
    code: Arc<CudaCode>,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    functions: Vec<Option<CudaFunction>>,
    /// One allocation per buffer index with `Storage::Own` (None for views).
    allocations: Vec<Option<CudaSlice<u32>>>,
    /// Device address of every buffer's element 0.
    addresses: Vec<u64>,
    scalars: Vec<u32>,
    names: HashMap<String, BufferId>,
}

impl CudaExecutor {
    /// Compile `program` for GPU `ordinal` (its own `sm_XX`), load it and allocate its
    /// buffers (zeroed).
    pub fn new(program: Program, ordinal: usize, codegen: &CudaOptions, cache: &KernelCache) -> Result<Self> {
        Self::load(Arc::new(CudaCode::compile(program, ordinal, codegen, cache)?))
    }

    /// Load already compiled `code` on its GPU and allocate its buffers (zeroed). Many
    /// executors may share one `code`; each owns its memory.
    pub fn load(code: Arc<CudaCode>) -> Result<Self> {
        let ordinal = code.device.ordinal;
        let ctx = CudaContext::new(ordinal).map_err(drv_err("cuCtxCreate"))?;
        let stream = ctx.default_stream();
        // The cubin when it is for this very architecture; otherwise PTX for the driver
        // to JIT (an older NVRTC than the GPU).
        let image = match &code.compiled.compiled.cubin {
            Some(cubin) if code.arch == sm_arch(code.device.compute_capability) => Ptx::from_binary(cubin.clone()),
            _ => Ptx::from_src(code.compiled.compiled.ptx.clone()),
        };
        let module = ctx.load_module(image).map_err(drv_err("cuModuleLoadData"))?;
        let functions = code
            .compiled
            .cuda
            .kernels
            .iter()
            .map(|k| {
                if k.launch.is_empty() {
                    Ok(None)
                } else {
                    module
                        .load_function(&k.name)
                        .map(Some)
                        .map_err(drv_err("cuModuleGetFunction"))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let program = &code.program;
        let mut allocations = Vec::with_capacity(program.buffers.len());
        for b in &program.buffers {
            allocations.push(match b.storage {
                Storage::Own => Some(stream.alloc_zeros::<u32>(b.len.max(1)).map_err(|e| {
                    if e.0 == cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
                        let (free, total) = ctx.mem_get_info().unwrap_or((0, 0));
                        CudaError::OutOfMemory {
                            bytes: 4 * b.len,
                            what: format!("{:?}", b.role),
                            free,
                            total,
                        }
                    } else {
                        drv_err("cuMemAlloc")(e)
                    }
                })?),
                Storage::View { .. } => None,
            });
        }
        let mut addresses = Vec::with_capacity(program.buffers.len());
        for i in 0..program.buffers.len() {
            let (root, off) = resolve(program, BufferId(i as u32));
            let slice = allocations[root]
                .as_ref()
                .ok_or_else(|| CudaError::Exec(format!("buffer b{i} resolves to a view")))?;
            let (base, _sync) = slice.device_ptr(&stream);
            addresses.push(base + 4 * off as u64);
        }
        let names = program
            .buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match &b.role {
                BufferRole::Input(n) | BufferRole::Param(n) | BufferRole::State(n) | BufferRole::Output(n) => {
                    Some((n.clone(), BufferId(i as u32)))
                }
                BufferRole::Temp => None,
            })
            .collect();
        let scalars = vec![0; program.scalars.len()];
        Ok(CudaExecutor {
            code,
            ctx,
            stream,
            _module: module,
            functions,
            allocations,
            addresses,
            scalars,
            names,
        })
    }

    pub fn device(&self) -> &DeviceInfo {
        &self.code.device
    }

    pub fn compiled(&self) -> &CompiledProgram {
        &self.code.compiled
    }

    /// The shared code this executor runs.
    pub fn code(&self) -> &Arc<CudaCode> {
        &self.code
    }

    pub fn program(&self) -> &Program {
        &self.code.program
    }

    fn buffer(&self, name: &str) -> Result<BufferId> {
        self.names.get(name).copied().ok_or_else(|| {
            let mut valid: Vec<&str> = self.names.keys().map(|s| s.as_str()).collect();
            valid.sort_unstable();
            CudaError::Exec(format!(
                "no input, param, state or output named `{name}`; valid: {}",
                valid.join(", ")
            ))
        })
    }

    /// Copy `value` into the input/param/state buffer `name`.
    pub fn set(&mut self, name: &str, value: &Value) -> Result<()> {
        let id = self.buffer(name)?;
        let b = &self.code.program.buffers[id.0 as usize];
        if value.data.len() != b.len || value.dtype != b.dtype {
            return Err(CudaError::Exec(format!(
                "`{name}` holds {} {} elements, got {} {}",
                b.len,
                b.dtype,
                value.data.len(),
                value.dtype
            )));
        }
        self.write(id, &value.data)
    }

    /// Copy `data` (the interpreter's f64 encoding, one per element) into buffer `id`,
    /// encoded for its dtype. `data` must hold the buffer's length.
    pub fn write(&mut self, id: BufferId, data: &[f64]) -> Result<()> {
        let b = self.program_buffer(id)?;
        if data.len() != b.len {
            return Err(CudaError::Exec(format!(
                "buffer b{} holds {} elements, got {}",
                id.0,
                b.len,
                data.len()
            )));
        }
        let dtype = b.dtype;
        let host: Vec<u32> = data.iter().map(|&x| to_bits(dtype, x)).collect();
        self.write_words(id, &host)
    }

    /// Fill buffer `id` with the 4-byte pattern `word` (e.g. a NaN to prove that every
    /// element gets written).
    pub fn fill(&mut self, id: BufferId, word: u32) -> Result<()> {
        let len = self.program_buffer(id)?.len;
        self.write_words(id, &vec![word; len])
    }

    fn program_buffer(&self, id: BufferId) -> Result<&kiln_compiler::kernel::Buffer> {
        self.code
            .program
            .buffers
            .get(id.0 as usize)
            .ok_or_else(|| CudaError::Exec(format!("no buffer b{}", id.0)))
    }

    fn write_words(&mut self, id: BufferId, host: &[u32]) -> Result<()> {
        let (root, off) = resolve(&self.code.program, id);
        let slice = self.allocations[root].as_mut().expect("roots are allocated");
        let mut view = slice.slice_mut(off..off + host.len());
        self.stream
            .memcpy_htod(host, &mut view)
            .map_err(drv_err("cuMemcpyHtoD"))
    }

    /// Set runtime scalar `name` (quantised to its dtype).
    pub fn set_scalar(&mut self, name: &str, value: f64) -> Result<()> {
        let slot = self
            .code
            .program
            .scalars
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| CudaError::Exec(format!("no runtime scalar named `{name}`")))?;
        self.set_scalar_slot(slot, value)
    }

    /// Set the runtime scalar in slot `slot` of the program's scalar table.
    pub fn set_scalar_slot(&mut self, slot: usize, value: f64) -> Result<()> {
        let dtype = self
            .code
            .program
            .scalars
            .get(slot)
            .ok_or_else(|| CudaError::Exec(format!("no runtime scalar slot {slot}")))?
            .dtype;
        self.scalars[slot] = to_bits(dtype, value);
        Ok(())
    }

    /// Read buffer `name` back (a flat value).
    pub fn get(&self, name: &str) -> Result<Value> {
        let id = self.buffer(name)?;
        let data = self.read(id)?;
        let dtype = self.code.program.buffers[id.0 as usize].dtype;
        Value::new([data.len()], dtype, data).map_err(|e| CudaError::Exec(e.to_string()))
    }

    /// Read buffer `id` back, one f64 per element (waits for the work issued before).
    pub fn read(&self, id: BufferId) -> Result<Vec<f64>> {
        let b = self.program_buffer(id)?;
        let (root, off) = resolve(&self.code.program, id);
        let slice = self.allocations[root].as_ref().expect("roots are allocated");
        let mut host = vec![0u32; b.len];
        self.stream
            .memcpy_dtoh(&slice.slice(off..off + b.len), &mut host)
            .map_err(drv_err("cuMemcpyDtoH"))?;
        // A copy into pageable memory returns once it is done; synchronising as well
        // keeps this correct should the host buffer ever become pinned.
        self.synchronize()?;
        Ok(host.iter().map(|&w| from_bits(b.dtype, w)).collect())
    }

    /// Launch every kernel in order, then apply the program's updates; asynchronous
    /// (reading a result or [`CudaExecutor::synchronize`] waits).
    pub fn run(&mut self) -> Result<()> {
        // The trainer may call from another thread than the one that loaded the code.
        self.ctx.bind_to_thread().map_err(drv_err("cuCtxSetCurrent"))?;
        for (k, f) in self.code.compiled.cuda.kernels.iter().zip(&self.functions) {
            let Some(f) = f else { continue };
            let mut pointers: Vec<u64> = Vec::new();
            let mut values: Vec<u32> = Vec::new();
            for a in &k.launch.args {
                match a {
                    KernelArg::Buffer { id, .. } => pointers.push(self.addresses[id.0 as usize]),
                    KernelArg::Scalar { slot, .. } => values.push(self.scalars[*slot]),
                }
            }
            let mut builder = self.stream.launch_builder(f);
            let (mut pi, mut vi) = (0, 0);
            for a in &k.launch.args {
                match a {
                    KernelArg::Buffer { .. } => {
                        builder.arg(&pointers[pi]);
                        pi += 1;
                    }
                    KernelArg::Scalar { .. } => {
                        builder.arg(&values[vi]);
                        vi += 1;
                    }
                }
            }
            let cfg = LaunchConfig {
                grid_dim: (k.launch.grid[0], k.launch.grid[1], k.launch.grid[2]),
                block_dim: (k.launch.block[0], k.launch.block[1], k.launch.block[2]),
                shared_mem_bytes: k.launch.dynamic_shared_bytes,
            };
            // SAFETY: the arguments follow the kernel's signature (the launch table and
            // the C parameter list come from the same code), every pointer addresses a
            // live allocation of at least the buffer's length, and the generated code
            // stays in bounds (the evaluator checks the kernel IR it comes from).
            unsafe { builder.launch(cfg) }.map_err(|e| CudaError::Driver {
                call: "cuLaunchKernel",
                detail: format!("{}: {e:?}", k.name),
            })?;
        }
        for &(target, value) in &self.code.program.updates {
            let (dst, src) = (self.addresses[target.0 as usize], self.addresses[value.0 as usize]);
            if dst != src {
                let bytes = 4 * self.code.program.buffers[target.0 as usize].len;
                // SAFETY: both ranges lie inside live allocations of this context, and
                // the update target never overlaps its value buffer unless they are equal.
                unsafe { drv::memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }
                    .map_err(drv_err("cuMemcpyDtoDAsync"))?;
            }
        }
        Ok(())
    }

    /// Wait for everything issued so far.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(drv_err("cuStreamSynchronize"))?;
        self.ctx.check_err().map_err(drv_err("asynchronous CUDA error"))
    }
}
