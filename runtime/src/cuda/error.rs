//! Everything that can go wrong on the CUDA path, as one error type with messages that
//! say what was looked for and what to do. Owns no logic.

use std::path::PathBuf;

use kiln_compiler::codegen::cuda::CudaCodegenError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CudaError {
    #[error(
        "no NVRTC library found: KILN_NVRTC is unset and the system search (dlopen of {searched}) found nothing; \
         install NVRTC (e.g. `.ci/install-nvrtc.sh`, or `pip install nvidia-cuda-nvrtc-cu12`) and set KILN_NVRTC \
         to libnvrtc.so.12 or the folder holding it"
    )]
    NoNvrtc { searched: String },
    #[error("KILN_NVRTC={value:?} is not usable: {reason}")]
    BadNvrtcPath { value: String, reason: String },
    #[error("could not load NVRTC from {}: {reason}", path.display())]
    NvrtcLoad { path: PathBuf, reason: String },
    #[error(
        "loaded {} but cudarc (built for CUDA 12) still cannot see NVRTC under the names it looks for ({searched}); \
         the library's SONAME is probably from another major version (CUDA 13 ships libnvrtc.so.13): use a CUDA 12 \
         NVRTC (nvidia-cuda-nvrtc-cu12)",
        path.display()
    )]
    NvrtcNotVisible { path: PathBuf, searched: String },
    #[error("NVRTC call {call} failed: {code}")]
    Nvrtc { call: &'static str, code: String },
    #[error("NVRTC failed to compile `{program}` for {arch}:\n{log}")]
    Compile { program: String, arch: String, log: String },
    #[error(
        "no CUDA driver (libcuda) found: libcuda.so.1 could not be loaded; the CUDA backend needs an NVIDIA GPU \
         with its driver installed; use the CPU backend (--backend cpu), or --backend auto to fall back to it"
    )]
    NoDriver,
    #[error("the CUDA driver reports no GPU (use --backend cpu, or --backend auto to fall back to it)")]
    NoDevice,
    #[error("CUDA device {ordinal} does not exist (the driver reports {count} device(s))")]
    BadOrdinal { ordinal: usize, count: usize },
    #[error("CUDA driver call {call} failed: {detail}")]
    Driver { call: &'static str, detail: String },
    #[error(
        "out of device memory allocating {bytes} bytes for {what} (device has {free} of {total} bytes free); \
         use a smaller batch or model, or the CPU backend"
    )]
    OutOfMemory {
        bytes: usize,
        what: String,
        free: usize,
        total: usize,
    },
    #[error("kernel cache at {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Codegen(#[from] CudaCodegenError),
    #[error("cuda executor: {0}")]
    Exec(String),
}

pub type Result<T> = std::result::Result<T, CudaError>;

/// What kind of failure a [`CudaError`] is, for callers that react to it (fall back to
/// the CPU, tell the user what to install) without matching every variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CudaErrorKind {
    /// libcuda cannot be loaded.
    NoDriver,
    /// The driver loads but reports no GPU, or not the requested one.
    NoDevice,
    /// NVRTC cannot be found or loaded.
    NoNvrtc,
    /// NVRTC rejected the generated CUDA C (a kiln bug: the log names the kernel).
    Compile,
    /// A device allocation failed.
    OutOfMemory,
    /// Any other driver, NVRTC, cache, codegen or executor failure.
    Other,
}

impl CudaErrorKind {
    /// The CUDA backend cannot run on this machine at all (driver, GPU or NVRTC
    /// missing): the case in which `--backend auto` falls back to the CPU.
    pub fn is_unavailable(self) -> bool {
        matches!(
            self,
            CudaErrorKind::NoDriver | CudaErrorKind::NoDevice | CudaErrorKind::NoNvrtc
        )
    }
}

impl CudaError {
    pub fn kind(&self) -> CudaErrorKind {
        match self {
            CudaError::NoDriver => CudaErrorKind::NoDriver,
            CudaError::NoDevice | CudaError::BadOrdinal { .. } => CudaErrorKind::NoDevice,
            CudaError::NoNvrtc { .. }
            | CudaError::BadNvrtcPath { .. }
            | CudaError::NvrtcLoad { .. }
            | CudaError::NvrtcNotVisible { .. } => CudaErrorKind::NoNvrtc,
            CudaError::Compile { .. } => CudaErrorKind::Compile,
            CudaError::OutOfMemory { .. } => CudaErrorKind::OutOfMemory,
            CudaError::Nvrtc { .. }
            | CudaError::Driver { .. }
            | CudaError::Cache { .. }
            | CudaError::Codegen(_)
            | CudaError::Exec(_) => CudaErrorKind::Other,
        }
    }

    /// A few words for a one-line note (e.g. why `--backend auto` chose the CPU).
    pub fn summary(&self) -> String {
        match self {
            CudaError::NoDriver => "no CUDA driver (libcuda.so.1 not found)".into(),
            CudaError::NoDevice => "the CUDA driver reports no GPU".into(),
            CudaError::BadOrdinal { ordinal, count } => format!("no CUDA device {ordinal} ({count} present)"),
            CudaError::NoNvrtc { .. } => "no NVRTC library found (set KILN_NVRTC)".into(),
            CudaError::BadNvrtcPath { value, .. } => format!("KILN_NVRTC={value:?} is not usable"),
            CudaError::NvrtcLoad { path, .. } | CudaError::NvrtcNotVisible { path, .. } => {
                format!("NVRTC at {} does not load", path.display())
            }
            other => other.to_string().lines().next().unwrap_or_default().to_string(),
        }
    }
}
