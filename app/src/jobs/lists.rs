//! Lists of mask ratios and seeds as people type them ("0.25, 0.5 0.75", "0,1,2"): one parser for the command
//! line and the window, so both accept and refuse the same text.

use mae_model::masking::check_ratio;

/// Items separated by commas and/or white space; empty items are skipped.
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|item| !item.is_empty())
}

/// Mask ratios in [0, 1]; at least one.
pub fn parse_ratios(text: &str) -> Result<Vec<f64>, String> {
    let ratios = items(text)
        .map(|item| {
            let ratio =
                item.parse::<f64>().map_err(|_| format!("\"{item}\" is not a mask ratio (a number in [0, 1])"))?;
            check_ratio(ratio).map_err(|_| format!("mask ratio \"{item}\" is outside [0, 1]"))?;
            Ok(ratio)
        })
        .collect::<Result<Vec<_>, String>>()?;
    if ratios.is_empty() { Err("the list is empty (give at least one mask ratio)".into()) } else { Ok(ratios) }
}

/// Seeds (`torch.manual_seed` values, whole numbers ≥ 0); at least one.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let seeds = items(text)
        .map(|item| item.parse::<u64>().map_err(|_| format!("\"{item}\" is not a seed (a whole number ≥ 0)")))
        .collect::<Result<Vec<_>, String>>()?;
    if seeds.is_empty() { Err("the list is empty (give at least one seed)".into()) } else { Ok(seeds) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_and_spaces_both_separate() {
        assert_eq!(parse_ratios("0.25, 0.5 0.75,,").unwrap(), vec![0.25, 0.5, 0.75]);
        assert_eq!(parse_seeds(" 0,1  2 ").unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn bad_items_are_named() {
        assert!(parse_ratios("0.5, 2").unwrap_err().contains("\"2\""));
        assert!(parse_ratios("-0.1").unwrap_err().contains("\"-0.1\""));
        assert!(parse_ratios("NaN").unwrap_err().contains("NaN"));
        assert!(parse_ratios(" , ").unwrap_err().contains("empty"));
        assert!(parse_seeds("1, x").unwrap_err().contains("\"x\""));
        assert!(parse_seeds("-3").unwrap_err().contains("\"-3\""));
        assert!(parse_seeds("").unwrap_err().contains("empty"));
    }
}
