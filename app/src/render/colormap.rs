//! The colormaps heatmaps are drawn with: matplotlib's perceptually uniform maps plus turbo, from colorous.

use std::fmt;

/// A continuous colormap; `t = 0` is the low end, `t = 1` the high end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Colormap {
    #[default]
    Viridis,
    Inferno,
    Magma,
    Turbo,
    Cividis,
}

impl Colormap {
    pub const ALL: [Colormap; 5] =
        [Colormap::Viridis, Colormap::Inferno, Colormap::Magma, Colormap::Turbo, Colormap::Cividis];

    /// The lowercase name used on the command line and in menus.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Inferno => "inferno",
            Colormap::Magma => "magma",
            Colormap::Turbo => "turbo",
            Colormap::Cividis => "cividis",
        }
    }

    fn gradient(self) -> colorous::Gradient {
        match self {
            Colormap::Viridis => colorous::VIRIDIS,
            Colormap::Inferno => colorous::INFERNO,
            Colormap::Magma => colorous::MAGMA,
            Colormap::Turbo => colorous::TURBO,
            Colormap::Cividis => colorous::CIVIDIS,
        }
    }

    /// The colour at `t`, clamped to [0, 1]; NaN counts as the low end so a bad value never panics.
    pub fn color(&self, t: f32) -> [u8; 3] {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let color = self.gradient().eval_continuous(f64::from(t));
        [color.r, color.g, color.b]
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--colormap`: the names above, whatever their case.
impl clap::ValueEnum for Colormap {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// Maps `value` into [0, 1] over `min..max`; a flat range maps everything to the middle.
pub fn normalize(value: f32, min: f32, max: f32) -> f32 {
    if max > min { ((value - min) / (max - min)).clamp(0.0, 1.0) } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        use clap::ValueEnum;
        for map in Colormap::ALL {
            assert_eq!(Colormap::from_str(&map.to_string(), false), Ok(map));
        }
        assert_eq!(Colormap::from_str("Turbo", true), Ok(Colormap::Turbo));
        assert!(Colormap::from_str("jet", true).is_err());
    }

    #[test]
    fn ends_are_matplotlibs_and_out_of_range_is_clamped() {
        // matplotlib's viridis runs from #440154 to #fde725.
        assert_eq!(Colormap::Viridis.color(0.0), [0x44, 0x01, 0x54]);
        assert_eq!(Colormap::Viridis.color(1.0), [0xfd, 0xe7, 0x25]);
        assert_eq!(Colormap::Viridis.color(-3.0), Colormap::Viridis.color(0.0));
        assert_eq!(Colormap::Viridis.color(f32::NAN), Colormap::Viridis.color(0.0));
        assert_eq!(Colormap::Magma.color(7.0), Colormap::Magma.color(1.0));
    }
}
