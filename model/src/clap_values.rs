//! The model's closed choices as `clap::ValueEnum`s (feature `clap`), so a command line takes them typed, lists
//! their names in its help and refuses any other value with clap's own message. Names and aliases are the types'
//! own, the same the window and its settings use.

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::{ComputeDtype, DeviceChoice, KernelChoice};

fn possible_value(name: &'static str, aliases: &'static [&'static str]) -> Option<PossibleValue> {
    Some(PossibleValue::new(name).aliases(aliases.iter().copied()))
}

impl ValueEnum for DeviceChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        possible_value(self.name(), self.aliases())
    }
}

impl ValueEnum for ComputeDtype {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        possible_value(self.name(), self.aliases())
    }
}

impl ValueEnum for KernelChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        possible_value(self.name(), &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_reads_the_names_and_aliases_the_types_parse() {
        for choice in DeviceChoice::ALL {
            assert_eq!(DeviceChoice::from_str(choice.name(), false), Ok(choice));
        }
        assert_eq!(DeviceChoice::from_str("gpu", false), Ok(DeviceChoice::Cuda));
        assert_eq!(DeviceChoice::from_str("CPU", true), Ok(DeviceChoice::Cpu));
        assert_eq!(ComputeDtype::from_str("half", false), Ok(ComputeDtype::F16));
        assert_eq!(ComputeDtype::from_str("bf16", false), Ok(ComputeDtype::Bf16));
        assert_eq!(KernelChoice::from_str("candle", false), Ok(KernelChoice::Candle));
        assert!(DeviceChoice::from_str("tpu", true).is_err());
        assert!(ComputeDtype::from_str("f64", true).is_err());
        assert!(KernelChoice::from_str("cudnn", true).is_err());
    }
}
