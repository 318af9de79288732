//! Finding, loading and calling NVRTC (the CUDA runtime compiler). Owns the library
//! lookup and the compile call; it knows nothing of kernels, caches or devices.
//!
//! Lookup: `KILN_NVRTC` wins — a library file, or a folder holding `libnvrtc.so.*`
//! (e.g. `.cache/nvrtc/nvidia/cuda_nvrtc/lib` from `.ci/install-nvrtc.sh`). Otherwise
//! the system's usual dlopen search (LD_LIBRARY_PATH, ldconfig, system folders) under
//! the names cudarc tries. A path is loaded with `dlopen` by ABSOLUTE path before
//! cudarc's first NVRTC call and kept loaded for the life of the process; cudarc's own
//! later `dlopen("libnvrtc.so.12")` then resolves to it by SONAME. This avoids
//! LD_LIBRARY_PATH, which cargo overwrites for test binaries. Afterwards
//! `cudarc::nvrtc::sys::is_culib_present()` must hold, or cudarc would panic.
//!
//! NVRTC needs no GPU: PTX, cubins and the ptxas register/spill report (compile for
//! `sm_XX` with `--ptxas-options=-v`) all come from the library alone.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cudarc::nvrtc::{result, sys};

use super::error::{CudaError, Result};
use super::ptxas::{parse_ptxas_log, KernelStats};

/// The environment variable naming the NVRTC library (file or folder).
pub const KILN_NVRTC: &str = "KILN_NVRTC";

/// A loaded NVRTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nvrtc {
    /// The file loaded by absolute path, or `None` when the system search found it.
    pub path: Option<PathBuf>,
    /// (major, minor) from `nvrtcVersion`.
    pub version: (i32, i32),
}

/// How to compile one translation unit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CompileOptions {
    /// `sm_XX` (PTX + cubin + ptxas report) or `compute_XX` (PTX only).
    pub arch: String,
    /// Pass `--ptxas-options=-v` (only meaningful for `sm_XX`).
    pub ptxas_verbose: bool,
    /// `--use_fast_math` (approximate transcendentals, flush denormals).
    pub fast_math: bool,
}

impl CompileOptions {
    pub fn for_arch(arch: impl Into<String>) -> Self {
        CompileOptions {
            arch: arch.into(),
            ptxas_verbose: true,
            fast_math: false,
        }
    }

    /// The NVRTC command-line options.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![format!("--gpu-architecture={}", self.arch), "--std=c++17".to_string()];
        if self.ptxas_verbose && self.arch.starts_with("sm_") {
            a.push("--ptxas-options=-v".into());
        }
        if self.fast_math {
            a.push("--use_fast_math".into());
        }
        a
    }
}

/// What one compile produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub ptx: String,
    /// The device binary when compiling for `sm_XX`.
    pub cubin: Option<Vec<u8>>,
    /// NVRTC's program log (warnings, the ptxas report).
    pub log: String,
    /// Per-kernel resource use parsed from the log (empty without the ptxas report).
    pub stats: Vec<KernelStats>,
}

/// The library names cudarc's system search tries (for messages).
fn searched_names() -> String {
    cudarc::get_lib_name_candidates("nvrtc").join(", ")
}

/// The NVRTC library file inside `dir`: `libnvrtc.so.<major>[.x]` preferred, then
/// `libnvrtc.so`; the `-builtins` and `.alt` companions are not candidates.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("libnvrtc.so") && !n.contains("builtins") && !n.contains("alt")
        })
        .collect();
    found.sort();
    let versioned = found
        .iter()
        .find(|p| p.to_string_lossy().contains("libnvrtc.so."))
        .cloned();
    versioned.or_else(|| found.into_iter().next())
}

/// Where NVRTC would come from: `Some(path)` from `KILN_NVRTC`, `None` for the system
/// search (only when it finds something).
pub fn locate() -> Result<Option<PathBuf>> {
    match std::env::var_os(KILN_NVRTC) {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(&v);
            let value = v.to_string_lossy().into_owned();
            if p.is_dir() {
                let lib = library_in(&p).ok_or_else(|| CudaError::BadNvrtcPath {
                    value: value.clone(),
                    reason: "the folder holds no libnvrtc.so* file".into(),
                })?;
                Ok(Some(absolute(&lib)))
            } else if p.is_file() {
                Ok(Some(absolute(&p)))
            } else {
                Err(CudaError::BadNvrtcPath {
                    value,
                    reason: "no such file or folder".into(),
                })
            }
        }
        _ => {
            if unsafe { sys::is_culib_present() } {
                Ok(None)
            } else {
                Err(CudaError::NoNvrtc {
                    searched: searched_names(),
                })
            }
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

static LOADED: OnceLock<Nvrtc> = OnceLock::new();

/// Load NVRTC (once per process) from where [`locate`] says and return it; every
/// later call is free.
pub fn nvrtc() -> Result<&'static Nvrtc> {
    if let Some(n) = LOADED.get() {
        return Ok(n);
    }
    load(locate()?)
}

/// Load NVRTC from the library file `path` (absolute), or through the system search
/// when `None`. The first successful load wins for the rest of the process.
pub fn load(path: Option<PathBuf>) -> Result<&'static Nvrtc> {
    if let Some(n) = LOADED.get() {
        return Ok(n);
    }
    if path.is_none() && !unsafe { sys::is_culib_present() } {
        return Err(CudaError::NoNvrtc {
            searched: searched_names(),
        });
    }
    if let Some(p) = &path {
        // SAFETY: loading NVRTC runs only its (trivial) initialisers. The handle is
        // leaked on purpose: the library must stay loaded for cudarc's lifetime.
        let lib = unsafe { libloading::Library::new(p) }.map_err(|e| CudaError::NvrtcLoad {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        std::mem::forget(lib);
        if !unsafe { sys::is_culib_present() } {
            return Err(CudaError::NvrtcNotVisible {
                path: p.clone(),
                searched: searched_names(),
            });
        }
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: is_culib_present() held, so cudarc's loader finds the library.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| CudaError::Nvrtc {
            call: "nvrtcVersion",
            code: format!("{e:?}"),
        })?;
    Ok(LOADED.get_or_init(|| Nvrtc {
        path,
        version: (major, minor),
    }))
}

/// Frees an NVRTC program when dropped.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program came from create_program and is destroyed once.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

fn nvrtc_err(call: &'static str) -> impl Fn(result::NvrtcError) -> CudaError {
    move |e| CudaError::Nvrtc {
        call,
        code: format!("{:?}", e.0),
    }
}

fn c_text(v: Vec<std::ffi::c_char>) -> String {
    let bytes: Vec<u8> = v.into_iter().map(|c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Nvrtc {
    /// "12.9"
    pub fn version_string(&self) -> String {
        format!("{}.{}", self.version.0, self.version.1)
    }

    /// Compile CUDA C `source` (named `program` in messages) with `opts`.
    pub fn compile(&self, program: &str, source: &str, opts: &CompileOptions) -> Result<Compiled> {
        let src = CString::new(source).map_err(|_| CudaError::Compile {
            program: program.to_string(),
            arch: opts.arch.clone(),
            log: "the source contains a NUL byte".into(),
        })?;
        let name = CString::new(format!("{}.cu", program.replace('\0', "_"))).unwrap_or_default();
        let prog =
            Program(result::create_program(&src, Some(name.as_c_str())).map_err(nvrtc_err("nvrtcCreateProgram"))?);
        let args = opts.args();
        // SAFETY: `prog` is a live program (destroyed by its Drop after this function).
        let compiled = unsafe { result::compile_program(prog.0, &args) };
        let log = c_text(unsafe { result::get_program_log(prog.0) }.map_err(nvrtc_err("nvrtcGetProgramLog"))?);
        match compiled {
            Ok(()) => {}
            Err(result::NvrtcError(sys::nvrtcResult::NVRTC_ERROR_COMPILATION)) => {
                return Err(CudaError::Compile {
                    program: program.to_string(),
                    arch: opts.arch.clone(),
                    log,
                })
            }
            Err(e) => {
                return Err(CudaError::Nvrtc {
                    call: "nvrtcCompileProgram",
                    code: format!("{:?} (options {args:?}); log:\n{log}", e.0),
                })
            }
        }
        let ptx = c_text(unsafe { result::get_ptx(prog.0) }.map_err(nvrtc_err("nvrtcGetPTX"))?);
        let cubin = if opts.arch.starts_with("sm_") {
            Some(unsafe { cubin(prog.0) }?)
        } else {
            None
        };
        Ok(Compiled {
            ptx,
            cubin,
            stats: parse_ptxas_log(&log),
            log,
        })
    }
}

/// The cubin of a program compiled for a real architecture.
///
/// # Safety
/// `prog` must be a live, successfully compiled program.
unsafe fn cubin(prog: sys::nvrtcProgram) -> Result<Vec<u8>> {
    let mut size = 0usize;
    sys::nvrtcGetCUBINSize(prog, &mut size)
        .result()
        .map_err(nvrtc_err("nvrtcGetCUBINSize"))?;
    let mut buf = vec![0u8; size];
    sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut std::ffi::c_char)
        .result()
        .map_err(nvrtc_err("nvrtcGetCUBIN"))?;
    Ok(buf)
}
