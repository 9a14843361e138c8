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
    fn an_empty_item_between_commas_is_refused() {
        let error = parse_seeds("0,,1").unwrap_err();
        assert_eq!(error, "\"0,,1\" has an empty item after \"0\" (two commas in a row): remove one");
        assert!(parse_ratios("0.5, ,0.75").unwrap_err().contains("empty item after \"0.5\""));
        assert!(comma_items(",a").unwrap_err().contains("starts with a comma"));
        assert!(comma_items("a,,").unwrap_err().contains("empty item after \"a\""));
    }
}
