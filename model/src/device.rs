//! Choosing where the model runs: `auto | cpu | cuda | metal`.

use candle_core::{DType, Device};

use crate::error::{MaeError, Result};
use crate::ops::KernelChoice;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first GPU this build supports, else the CPU (with the reason).
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

impl std::str::FromStr for DeviceChoice {
    type Err = MaeError;
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|choice| choice.name() == wanted || choice.aliases().contains(&wanted.as_str()))
            .ok_or_else(|| MaeError::Device(format!("unknown device \"{wanted}\" (use auto, cpu, cuda or metal)")))
    }
}

impl DeviceChoice {
    pub const ALL: [DeviceChoice; 4] = [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda, DeviceChoice::Metal];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Metal => "metal",
        }
    }

    /// Other names accepted for the device.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::Cuda => &["gpu"],
            Self::Auto | Self::Cpu | Self::Metal => &[],
        }
    }

    /// Whether this build can use the device at all (`auto` and the CPU always).
    pub fn is_built_in(self) -> bool {
        match self {
            Self::Auto | Self::Cpu => true,
            Self::Cuda => candle_core::utils::cuda_is_available(),
            Self::Metal => candle_core::utils::metal_is_available(),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A dtype a model can compute in, by the names `--dtype`, the window and its settings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComputeDtype {
    #[default]
    F32,
    /// GPUs only.
    F16,
    /// GPUs only.
    Bf16,
}

impl ComputeDtype {
    pub const ALL: [ComputeDtype; 3] = [ComputeDtype::F32, ComputeDtype::F16, ComputeDtype::Bf16];

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }

    /// torch's spellings of the same dtype, also accepted.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::F32 => &["float32"],
            Self::F16 => &["float16", "half"],
            Self::Bf16 => &["bfloat16"],
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::Bf16 => DType::BF16,
        }
    }
}

impl std::str::FromStr for ComputeDtype {
    type Err = MaeError;
    fn from_str(text: &str) -> Result<Self> {
        let wanted = text.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|dtype| dtype.name() == wanted || dtype.aliases().contains(&wanted.as_str()))
            .ok_or_else(|| MaeError::Device(format!("unknown dtype \"{wanted}\" (use f32, f16 or bf16)")))
    }
}

/// Parses a compute dtype name (f32, f16 or bf16; torch's spellings too).
pub fn parse_dtype(text: &str) -> Result<DType> {
    text.parse::<ComputeDtype>().map(ComputeDtype::dtype)
}

/// The name `parse_dtype` reads back.
pub fn dtype_name(dtype: DType) -> &'static str {
    ComputeDtype::ALL.into_iter().find(|known| known.dtype() == dtype).map_or("?", ComputeDtype::name)
}

/// A device that was picked, with a human sentence saying what and why, and the dtype to compute in.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    pub device: Device,
    pub description: String,
    /// f32 unless `with_dtype` chose f16/bf16 (GPUs only).
    pub compute_dtype: DType,
    /// The layer kernels models loaded on it run (fused unless `with_kernels` chose candle's ops); their weights are
    /// laid out for these at load.
    pub kernels: KernelChoice,
}

impl SelectedDevice {
    pub fn name(&self) -> &'static str {
        match self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Metal(_) => "metal",
        }
    }

    /// f32 on the CPU (bf16/f16 matmuls are emulated there); `requested` elsewhere.
    pub fn dtype(&self, requested: DType) -> Result<DType> {
        if self.device.is_cpu() && requested != DType::F32 {
            return Err(MaeError::Device(format!("{requested:?} is not supported on the CPU; use f32")));
        }
        Ok(requested)
    }

    /// The same device computing in `dtype` (f32, f16 or bf16; only f32 on the CPU).
    pub fn with_dtype(mut self, dtype: DType) -> Result<Self> {
        if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
            return Err(MaeError::Device(format!("{dtype:?} is not a compute dtype (use f32, f16 or bf16)")));
        }
        self.compute_dtype = self.dtype(dtype)?;
        Ok(self)
    }

    /// The same device, its models running on `kernels`.
    pub fn with_kernels(mut self, kernels: KernelChoice) -> Self {
        self.kernels = kernels;
        self
    }
}

pub fn select_device(choice: DeviceChoice) -> Result<SelectedDevice> {
    let cpu = |why: &str| SelectedDevice {
        device: Device::Cpu,
        description: format!("cpu ({why})"),
        compute_dtype: DType::F32,
        kernels: KernelChoice::default(),
    };
    match choice {
        DeviceChoice::Cpu => Ok(cpu("requested")),
        DeviceChoice::Cuda => cuda().map_err(MaeError::Device),
        DeviceChoice::Metal => metal().map_err(MaeError::Device),
        DeviceChoice::Auto => {
            match cuda().or_else(|cuda_problem| metal().map_err(|metal_problem| (cuda_problem, metal_problem))) {
                Ok(selected) => Ok(selected),
                Err((cuda_problem, metal_problem)) => Ok(cpu(&format!("auto: {cuda_problem}; {metal_problem}"))),
            }
        }
    }
}

fn cuda() -> std::result::Result<SelectedDevice, String> {
    if !candle_core::utils::cuda_is_available() {
        return Err("this build has no CUDA support (build with --features cuda)".into());
    }
    let device = Device::new_cuda(0).map_err(|e| format!("CUDA device 0 could not be opened: {e}"))?;
    #[cfg(feature = "cuda")]
    crate::cuda_kernels::prepare_device(&device);
    Ok(SelectedDevice {
        device,
        description: "cuda:0".into(),
        compute_dtype: DType::F32,
        kernels: KernelChoice::default(),
    })
}

fn metal() -> std::result::Result<SelectedDevice, String> {
    if !candle_core::utils::metal_is_available() {
        return Err("this build has no Metal support (build with --features metal on macOS)".into());
    }
    Device::new_metal(0)
        .map(|device| SelectedDevice {
            device,
            description: "metal:0".into(),
            compute_dtype: DType::F32,
            kernels: KernelChoice::default(),
        })
        .map_err(|e| format!("Metal device 0 could not be opened: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_the_cpu_and_says_why() {
        let selected = select_device(DeviceChoice::Auto).unwrap();
        if selected.device.is_cpu() {
            assert!(selected.description.contains("CUDA") || selected.description.contains("cuda"));
        }
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        let cpu = select_device(DeviceChoice::Cpu).unwrap();
        assert_eq!(cpu.compute_dtype, DType::F32);
        let err = cpu.clone().with_dtype(DType::BF16).unwrap_err();
        assert!(err.to_string().contains("not supported on the CPU"), "{err}");
        assert!(cpu.with_dtype(DType::U8).is_err());
    }
}
