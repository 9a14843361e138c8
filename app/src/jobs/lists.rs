//! Lists as people type them ("0.25, 0.5 0.75", "0,1,2", "random:0.75,grid"): one splitting rule and one parser
//! per kind, for the command line (as clap value parsers, so every command gets typed lists) and the window, so
//! both accept and refuse the same text.

use std::str::FromStr;

use mae_model::masking::check_ratio;

use crate::render::grid::Column;

/// The items of a comma-separated list, trimmed. Spaces after commas and one trailing comma are accepted; an empty
/// item between commas (`0,,1`, `,0`) is refused: it is a typo more often than not, and skipping it silently would
/// run something else than was meant. Nothing but white space (or one comma) is the empty list, for the caller to
/// refuse in its own words.
pub fn comma_items(text: &str) -> Result<Vec<&str>, String> {
    let mut items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() > 1 && items.last() == Some(&"") {
        items.pop();
    }
    match items.iter().position(|item| item.is_empty()) {
        None => Ok(items),
        Some(_) if items.len() == 1 => Ok(Vec::new()),
        Some(0) => Err(format!("\"{text}\" starts with a comma: remove it")),
        Some(position) => Err(format!(
            "\"{text}\" has an empty item after \"{}\" (two commas in a row): remove one",
            items[position - 1]
        )),
    }
}

/// Items separated by commas (as [`comma_items`]) and/or white space, for lists of numbers; `what` names one item
/// for the empty list's message.
fn number_items<'a>(text: &'a str, what: &str) -> Result<Vec<&'a str>, String> {
    let items: Vec<&str> = comma_items(text)?.into_iter().flat_map(str::split_whitespace).collect();
    if items.is_empty() { Err(format!("the list is empty (give at least one {what})")) } else { Ok(items) }
}

/// Mask ratios in [0, 1]; at least one.
pub fn parse_ratios(text: &str) -> Result<Vec<f64>, String> {
    number_items(text, "mask ratio")?
        .into_iter()
        .map(|item| {
            let ratio =
                item.parse::<f64>().map_err(|_| format!("\"{item}\" is not a mask ratio (a number in [0, 1])"))?;
            check_ratio(ratio).map_err(|_| format!("mask ratio \"{item}\" is outside [0, 1]"))?;
            Ok(ratio)
        })
        .collect()
}

/// One seed: a `torch.manual_seed` value, a whole number ≥ 0 (a negative one is named as such).
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(negative) = text.parse::<i128>()
        && negative < 0
    {
        return Err(format!("seed {negative} is negative: a seed is a whole number from 0 to {}", u64::MAX));
    }
    text.parse::<u64>().map_err(|_| format!("\"{text}\" is not a seed (a whole number from 0 to {})", u64::MAX))
}

/// Seeds (`torch.manual_seed` values, whole numbers ≥ 0); at least one.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    number_items(text, "seed")?.into_iter().map(parse_seed).collect()
}

/// `--mask-ratios` as clap hands it to a command: parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Ratios(pub Vec<f64>);

impl FromStr for Ratios {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_ratios(text).map(Ratios)
    }
}

/// `--seeds` as clap hands it to a command: parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Seeds(pub Vec<u64>);

impl FromStr for Seeds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_seeds(text).map(Seeds)
    }
}

/// Most frames an animation may have (`animate`, File → Export animation…): checked while its lists are parsed, so
/// a typo such as a step of 0.000001 is refused before anything is allocated or loaded.
pub const MAX_FRAMES: usize = 1000;

/// How far past TO the last value of `FROM:TO:STEP` may land and still count as TO (0.1 + 2·0.1 is
/// 0.30000000000000004).
const RANGE_END_TOLERANCE: f64 = 1e-9;

/// Mask ratios for an animation: a list as [`parse_ratios`] takes it, or `FROM:TO:STEP` — FROM, FROM + STEP, … up
/// to TO (included when reached within 1e-9), each rounded to the most decimals typed in the three numbers, so
/// `0.1:0.3:0.1` is exactly 0.1, 0.2 and 0.3 as typed, not 0.30000000000000004.
pub fn parse_ratio_frames(text: &str) -> Result<Vec<f64>, String> {
    if !text.contains(':') {
        return parse_ratios(text);
    }
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    let [from, to, step] = parts[..] else {
        return Err(format!("\"{text}\" is not a ratio range: write FROM:TO:STEP, e.g. 0.1:0.9:0.1"));
    };
    let number = |item: &str, what: &str| -> Result<f64, String> {
        // Decimals decide the rounding, so an exponent (1e-1) would hide them.
        let digits = item.strip_prefix('-').unwrap_or(item);
        let plain = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.');
        match item.parse::<f64>() {
            Ok(value) if plain => Ok(value),
            _ => Err(format!("ratio range \"{text}\": {what} \"{item}\" is not a decimal number such as 0.05")),
        }
    };
    let (first, last, increment) = (number(from, "FROM")?, number(to, "TO")?, number(step, "STEP")?);
    for (item, value) in [(from, first), (to, last)] {
        check_ratio(value).map_err(|_| format!("ratio range \"{text}\": {item} is outside [0, 1]"))?;
    }
    if increment <= 0.0 {
        return Err(format!("ratio range \"{text}\": the step must be more than 0"));
    }
    if first > last {
        return Err(format!("ratio range \"{text}\": FROM is more than TO (write the smaller ratio first)"));
    }
    let count = ((last - first + RANGE_END_TOLERANCE) / increment).floor() + 1.0;
    if count > MAX_FRAMES as f64 {
        return Err(format!(
            "ratio range \"{text}\" makes {count} frames, more than {MAX_FRAMES}: use a larger step or a shorter range"
        ));
    }
    let decimals = [from, to, step].iter().map(|item| item.split_once('.').map_or(0, |(_, d)| d.len())).max();
    let scale = 10f64.powi(decimals.unwrap_or(0) as i32);
    // k / 10^d is the double nearest the decimal k·10^-d, the same value parsing it gives.
    Ok((0..count as usize).map(|index| ((first + index as f64 * increment) * scale).round() / scale).collect())
}

/// Seeds for an animation: a list as [`parse_seeds`] takes it, or `A-B`, every seed from A to B included.
pub fn parse_seed_frames(text: &str) -> Result<Vec<u64>, String> {
    let Some((from, to)) = text.trim().split_once('-').filter(|(from, _)| !from.trim().is_empty()) else {
        return parse_seeds(text);
    };
    let (first, last) = (parse_seed(from)?, parse_seed(to)?);
    if first > last {
        return Err(format!("seed range \"{text}\": A is more than B (write the smaller seed first)"));
    }
    let count = u128::from(last - first) + 1;
    if count > MAX_FRAMES as u128 {
        return Err(format!("seed range \"{text}\" makes {count} frames, more than {MAX_FRAMES}: use a shorter range"));
    }
    Ok((first..=last).collect())
}

/// `animate --mask-ratios`: a list or `FROM:TO:STEP`, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioFrames(pub Vec<f64>);

impl FromStr for RatioFrames {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_ratio_frames(text).map(RatioFrames)
    }
}

/// `animate --seeds`: a list or `A-B`, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedFrames(pub Vec<u64>);

impl FromStr for SeedFrames {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_seed_frames(text).map(SeedFrames)
    }
}

/// A `--columns` list: original, mask, masked, reconstruction, pasted, loss, attention[:...], rollout[:...].
pub fn parse_columns(list: &str) -> Result<Vec<Column>, String> {
    let columns: Vec<Column> = comma_items(list)?.into_iter().map(str::parse).collect::<Result<_, _>>()?;
    if columns.is_empty() {
        return Err(
            "no columns given (choose from original, mask, masked, reconstruction, pasted, loss, attention)".into()
        );
    }
    Ok(columns)
}

/// `--columns` as clap hands it to a command: parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnList(pub Vec<Column>);

impl FromStr for ColumnList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_columns(text).map(ColumnList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_and_spaces_both_separate_and_one_trailing_comma_is_fine() {
        assert_eq!(parse_ratios("0.25, 0.5 0.75,").unwrap(), vec![0.25, 0.5, 0.75]);
        assert_eq!(parse_seeds(" 0,1  2 ").unwrap(), vec![0, 1, 2]);
        assert_eq!(comma_items("a, b ,c,").unwrap(), ["a", "b", "c"]);
        // Typed as the decimal they are: 0.15, not 3 × 0.05.
        assert_eq!(parse_ratios("0.15").unwrap()[0].to_string(), "0.15");
    }

    #[test]
    fn bad_items_are_named() {
        assert!(parse_ratios("0.5, 2").unwrap_err().contains("\"2\""));
        assert!(parse_ratios("-0.1").unwrap_err().contains("\"-0.1\""));
        assert!(parse_ratios("NaN").unwrap_err().contains("NaN"));
        assert!(parse_ratios(" , ").unwrap_err().contains("empty"));
        assert!(parse_seeds("1, x").unwrap_err().contains("\"x\""));
        assert_eq!(
            parse_seeds("-3").unwrap_err(),
            format!("seed -3 is negative: a seed is a whole number from 0 to {}", u64::MAX)
        );
        assert!(parse_seeds("").unwrap_err().contains("empty"));
        assert!(parse_seed("18446744073709551616").unwrap_err().contains("not a seed"));
    }

    #[test]
    fn column_lists_parse_and_bad_ones_are_named() {
        assert_eq!(parse_columns("original, masked,pasted").unwrap().len(), 3);
        let err = parse_columns("original,recon").unwrap_err();
        assert!(err.contains("\"recon\""), "{err}");
        assert!(parse_columns(" , ").is_err());
        assert!(parse_columns("original,,pasted").unwrap_err().contains("two commas in a row"));
    }

    #[test]
    fn ratio_ranges_hold_the_decimals_typed_and_both_ends() {
        assert_eq!(parse_ratio_frames("0.1:0.3:0.1").unwrap(), vec![0.1, 0.2, 0.3]);
        let five = parse_ratio_frames("0.5:0.9:0.1").unwrap();
        assert_eq!(five, vec![0.5, 0.6, 0.7, 0.8, 0.9]);
        assert_eq!(parse_ratio_frames("0:1:0.25").unwrap(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        // The step decides the decimals when it has more than the ends.
        assert_eq!(parse_ratio_frames("0.1:0.2:0.05").unwrap(), vec![0.1, 0.15, 0.2]);
        // TO need not be reached exactly: the last value is the last one not past it.
        assert_eq!(parse_ratio_frames("0.1:0.35:0.1").unwrap(), vec![0.1, 0.2, 0.3]);
        assert_eq!(parse_ratio_frames("0:0.999:0.001").unwrap().len(), MAX_FRAMES);
        assert_eq!(parse_ratio_frames("0.5:0.5:0.1").unwrap(), vec![0.5]);
        // Without a colon it is the ordinary list.
        assert_eq!(parse_ratio_frames("0.25, 0.5").unwrap(), vec![0.25, 0.5]);
    }

    #[test]
    fn bad_ratio_ranges_are_named() {
        assert!(parse_ratio_frames("0.1:0.9:0").unwrap_err().contains("step must be more than 0"));
        assert!(parse_ratio_frames("0.1:0.9:-0.1").unwrap_err().contains("step must be more than 0"));
        assert!(parse_ratio_frames("-0.1:0.9:0.1").unwrap_err().contains("-0.1 is outside [0, 1]"));
        assert!(parse_ratio_frames("0:1:0.001").unwrap_err().contains("1001 frames, more than 1000"));
        assert!(parse_ratio_frames("0.9:0.1:0.1").unwrap_err().contains("FROM is more than TO"));
        assert!(parse_ratio_frames("0.5:1.5:0.1").unwrap_err().contains("1.5 is outside [0, 1]"));
        assert!(parse_ratio_frames("0:1:0.0001").unwrap_err().contains("10001 frames, more than 1000"));
        assert!(parse_ratio_frames("0.1:0.9").unwrap_err().contains("FROM:TO:STEP"));
        assert!(parse_ratio_frames("0.1:0.9:1e-1").unwrap_err().contains("not a decimal number"));
    }

    #[test]
    fn seed_ranges_include_both_ends_and_are_capped() {
        assert_eq!(parse_seed_frames("3-6").unwrap(), vec![3, 4, 5, 6]);
        assert_eq!(parse_seed_frames(" 7 - 7 ").unwrap(), vec![7]);
        assert_eq!(parse_seed_frames("0, 2").unwrap(), vec![0, 2]);
        assert_eq!(parse_seed_frames("0-999").unwrap().len(), MAX_FRAMES);
        assert!(parse_seed_frames("0-1000").unwrap_err().contains("1001 frames, more than 1000"));
        assert!(parse_seed_frames("0-999999").unwrap_err().contains("1000000 frames"));
        assert!(parse_seed_frames("6-3").unwrap_err().contains("A is more than B"));
        assert!(parse_seed_frames("-3").unwrap_err().contains("seed -3 is negative"));
        assert!(parse_seed_frames("1-x").unwrap_err().contains("\"x\""));
    }

    #[test]
    fn an_empty_item_between_commas_is_refused() {
        let error = parse_seeds("0,,1").unwrap_err();
        assert_eq!(error, "\"0,,1\" has an empty item after \"0\" (two commas in a row): remove one");
        assert!(parse_ratios("0.5, ,0.75").unwrap_err().contains("empty item after \"0.5\""));
        assert!(comma_items(",a").unwrap_err().contains("starts with a comma"));
        assert!(comma_items("a,,").unwrap_err().contains("empty item after \"a\""));
    }
}
