//! Where an executable's memory lives and how its kernels run: host buffers and the
//! Cranelift code on the CPU worker pool, or device buffers and NVRTC-compiled kernels
//! on a GPU (`cuda::CudaExecutor`). The executable's front end (names, shapes, dtypes,
//! scalars) talks to buffers by id through this enum only; it owns no validation.
//!
//! CUDA: parameters, state and intermediates stay on the device between runs; a write
//! is one host-to-device copy, a read one device-to-host copy, so only bound inputs,
//! `set` values and read results cross the bus. Not run on a GPU yet (see `cuda`).

use std::sync::Arc;

use kiln_compiler::kernel::{BufferId, Program};
use kiln_ir::{DType, Graph, Shape, Value};

use super::code::{CompileStats, Compiled, CudaCompiled};
use crate::cpu::exec::{run_program, TaskError};
use crate::cpu::{Buffers, Pool, POISON};
use crate::cuda::{CudaError, CudaExecutor};
use crate::error::RuntimeError;

/// The 4-byte scalar-table encoding of a runtime scalar (the CPU kernels' ABI).
fn encode_scalar(dtype: DType, x: f64) -> u32 {
    match dtype {
        DType::I32 => DType::I32.quantize(x) as i32 as u32,
        DType::Bool => (x != 0.0) as u32,
        _ => (x as f32).to_bits(),
    }
}

/// An executable's code and memory on one backend.
pub(crate) enum Engine {
    Cpu {
        compiled: Arc<Compiled>,
        buffers: Buffers,
        scalar_slots: Vec<u32>,
        pool: &'static Pool,
    },
    Cuda {
        compiled: Arc<CudaCompiled>,
        exec: Box<CudaExecutor>,
    },
}

impl Engine {
    /// Host memory for CPU code (zeroed).
    pub(crate) fn cpu(compiled: Arc<Compiled>) -> Result<Engine, RuntimeError> {
        let buffers = Buffers::new(&compiled.program)?;
        let scalar_slots = vec![0u32; compiled.program.scalars.len()];
        Ok(Engine::Cpu {
            compiled,
            buffers,
            scalar_slots,
            pool: Pool::global(),
        })
    }

    /// The code loaded on its GPU with device memory (zeroed).
    pub(crate) fn cuda(compiled: Arc<CudaCompiled>) -> Result<Engine, RuntimeError> {
        let exec = CudaExecutor::load(Arc::clone(&compiled.code))?;
        Ok(Engine::Cuda {
            compiled,
            exec: Box::new(exec),
        })
    }

    pub(crate) fn program(&self) -> &Program {
        match self {
            Engine::Cpu { compiled, .. } => &compiled.program,
            Engine::Cuda { compiled, .. } => &compiled.code.program,
        }
    }

    pub(crate) fn graph(&self) -> Option<&Graph> {
        match self {
            Engine::Cpu { compiled, .. } => compiled.graph.as_ref(),
            Engine::Cuda { compiled, .. } => compiled.graph.as_ref(),
        }
    }

    pub(crate) fn stats(&self) -> &CompileStats {
        match self {
            Engine::Cpu { compiled, .. } => &compiled.stats,
            Engine::Cuda { compiled, .. } => &compiled.stats,
        }
    }

    /// Write `data` (f64 per element, length checked by the caller) into buffer `id`.
    pub(crate) fn write(&mut self, id: BufferId, data: &[f64]) -> Result<(), RuntimeError> {
        match self {
            Engine::Cpu { buffers, .. } => {
                buffers.write(id, data);
                Ok(())
            }
            Engine::Cuda { exec, .. } => Ok(exec.write(id, data)?),
        }
    }

    /// Buffer `id` as a value of `shape`.
    pub(crate) fn read(&self, id: BufferId, shape: Shape) -> Result<Value, RuntimeError> {
        match self {
            Engine::Cpu { buffers, .. } => Ok(buffers.read(id, shape)),
            Engine::Cuda { exec, .. } => {
                let dtype = exec.program().buffers[id.0 as usize].dtype;
                Ok(Value {
                    shape,
                    dtype,
                    data: exec.read(id)?,
                })
            }
        }
    }

    /// Fill buffer `id` with NaN (`cpu::POISON`).
    pub(crate) fn poison(&mut self, id: BufferId) -> Result<(), RuntimeError> {
        match self {
            Engine::Cpu { buffers, .. } => {
                buffers.poison(id);
                Ok(())
            }
            Engine::Cuda { exec, .. } => Ok(exec.fill(id, POISON)?),
        }
    }

    /// Set slot `slot` of the scalar table to `value` (already quantised).
    pub(crate) fn set_scalar_slot(&mut self, slot: usize, dtype: DType, value: f64) -> Result<(), RuntimeError> {
        match self {
            Engine::Cpu { scalar_slots, .. } => {
                scalar_slots[slot] = encode_scalar(dtype, value);
                Ok(())
            }
            Engine::Cuda { exec, .. } => Ok(exec.set_scalar_slot(slot, value)?),
        }
    }

    /// Run every kernel and apply the program's updates; on CUDA, wait for the device
    /// so that an asynchronous failure is reported by this run.
    pub(crate) fn run(&mut self) -> Result<(), RuntimeError> {
        match self {
            Engine::Cpu {
                compiled,
                buffers,
                scalar_slots,
                pool,
            } => run_program(
                &compiled.program,
                &compiled.code,
                buffers,
                scalar_slots,
                &compiled.code.helpers,
                pool,
            )
            .map_err(|TaskError::Panicked(kernel)| RuntimeError::WorkerPanicked { kernel }),
            Engine::Cuda { exec, .. } => {
                exec.run()?;
                exec.synchronize()?;
                Ok(())
            }
        }
    }
}

impl From<CudaError> for RuntimeError {
    fn from(e: CudaError) -> Self {
        let kind = e.kind();
        let mut message = format!("CUDA backend: {e}");
        if kind == crate::cuda::CudaErrorKind::NoNvrtc {
            message.push_str("; or train on the CPU instead (--backend cpu, or --backend auto to fall back to it)");
        }
        RuntimeError::Cuda { kind, message }
    }
}
