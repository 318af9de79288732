//! CUDA device discovery: is there a driver, which GPUs, which `sm_XX` to compile for.
//! Owns driver queries only (no contexts, buffers or launches: see `exec`).
//!
//! Every driver use is guarded by `cudarc::driver::sys::is_culib_present()`: without
//! libcuda cudarc's lazy loader panics (even `CudaContext::new` does not return an
//! error), so the guard turns that into [`CudaError::NoDriver`]. The architecture is
//! always the device's own compute capability (`sm_{major}{minor}`), never a constant,
//! lowered to the newest architecture the loaded NVRTC supports when NVRTC is older than
//! the GPU (the driver JIT-compiles PTX forward, not backward).

use cudarc::driver::{result as drv, sys as dsys};

use super::error::{CudaError, Result};
use super::nvrtc::Nvrtc;

/// What the driver says about one GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub total_memory: usize,
    pub multiprocessors: i32,
}

impl DeviceInfo {
    /// `sm_XX` of this device.
    pub fn arch(&self) -> String {
        sm_arch(self.compute_capability)
    }
}

/// `(9, 0)` -> `sm_90`.
pub fn sm_arch((major, minor): (i32, i32)) -> String {
    format!("sm_{major}{minor}")
}

/// Whether libcuda can be loaded (cheap, never panics).
pub fn driver_present() -> bool {
    // SAFETY: only tries dlopen on the candidate names.
    unsafe { dsys::is_culib_present() }
}

fn driver_err(call: &'static str) -> impl Fn(drv::DriverError) -> CudaError {
    move |e| CudaError::Driver {
        call,
        detail: format!("{e:?}"),
    }
}

/// Every GPU the driver reports; an error when there is no driver or no GPU.
pub fn devices() -> Result<Vec<DeviceInfo>> {
    if !driver_present() {
        return Err(CudaError::NoDriver);
    }
    match drv::init() {
        Ok(()) => {}
        Err(drv::DriverError(dsys::cudaError_enum::CUDA_ERROR_NO_DEVICE)) => return Err(CudaError::NoDevice),
        Err(e) => return Err(driver_err("cuInit")(e)),
    }
    let count = drv::device::get_count().map_err(driver_err("cuDeviceGetCount"))?;
    if count <= 0 {
        return Err(CudaError::NoDevice);
    }
    (0..count as usize).map(device_info).collect()
}

/// One GPU's description (the driver must be initialised).
fn device_info(ordinal: usize) -> Result<DeviceInfo> {
    let dev = drv::device::get(ordinal as i32).map_err(driver_err("cuDeviceGet"))?;
    let attr = |a: dsys::CUdevice_attribute| {
        // SAFETY: `dev` is a valid device handle from cuDeviceGet.
        unsafe { drv::device::get_attribute(dev, a) }.map_err(driver_err("cuDeviceGetAttribute"))
    };
    use dsys::CUdevice_attribute::*;
    Ok(DeviceInfo {
        ordinal,
        name: drv::device::get_name(dev).map_err(driver_err("cuDeviceGetName"))?,
        compute_capability: (
            attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        ),
        // SAFETY: as above.
        total_memory: unsafe { drv::device::total_mem(dev) }.map_err(driver_err("cuDeviceTotalMem"))?,
        multiprocessors: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
    })
}

/// The device at `ordinal`.
pub fn device(ordinal: usize) -> Result<DeviceInfo> {
    let all = devices()?;
    let count = all.len();
    all.into_iter()
        .nth(ordinal)
        .ok_or(CudaError::BadOrdinal { ordinal, count })
}

impl Nvrtc {
    /// The `sm_XX` values this NVRTC can compile for (from `nvrtcGetSupportedArchs`).
    pub fn supported_archs(&self) -> Result<Vec<i32>> {
        use cudarc::nvrtc::sys;
        let mut n = 0;
        // SAFETY: NVRTC is loaded (an `Nvrtc` exists only after a successful load).
        unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
            .result()
            .map_err(|e| CudaError::Nvrtc {
                call: "nvrtcGetNumSupportedArchs",
                code: format!("{:?}", e.0),
            })?;
        let mut archs = vec![0; n.max(0) as usize];
        unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
            .result()
            .map_err(|e| CudaError::Nvrtc {
                call: "nvrtcGetSupportedArchs",
                code: format!("{:?}", e.0),
            })?;
        Ok(archs)
    }

    /// The architecture to compile for on a device of compute capability `cc`: its own
    /// `sm_XX` when supported, else the newest supported one below it.
    pub fn arch_for(&self, cc: (i32, i32)) -> Result<String> {
        let want = cc.0 * 10 + cc.1;
        let archs = self.supported_archs()?;
        if archs.contains(&want) {
            return Ok(sm_arch(cc));
        }
        archs
            .iter()
            .copied()
            .filter(|&a| a <= want)
            .max()
            .map(|a| format!("sm_{a}"))
            .ok_or_else(|| CudaError::Nvrtc {
                call: "nvrtcGetSupportedArchs",
                code: format!(
                    "NVRTC {} supports {archs:?}, none at or below the device's sm_{want}",
                    self.version_string()
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_names() {
        assert_eq!(sm_arch((9, 0)), "sm_90");
        assert_eq!(sm_arch((8, 6)), "sm_86");
        assert_eq!(sm_arch((12, 0)), "sm_120");
    }

    #[test]
    fn no_driver_is_an_error_not_a_panic() {
        // On machines without libcuda this must be NoDriver; with a driver (and maybe
        // no GPU) it must not panic either.
        match devices() {
            Err(CudaError::NoDriver) => assert!(!driver_present()),
            _ => assert!(driver_present()),
        }
    }
}
