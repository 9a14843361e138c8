//! The little CSV the jobs write and read back: fields quoted only when they must be (file names may hold commas,
//! quotes or line breaks), and records parsed back with the same rules, so `eval --resume` reads what it wrote.

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// One line of fields, each quoted as [`field`] does, ending in `\n`.
pub fn line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut text = fields.iter().map(|f| field(f.as_ref())).collect::<Vec<_>>().join(",");
    text.push('\n');
    text
}

/// A value as the CSVs write it: empty where it does not exist, `inf` for a perfect PSNR, else Rust's shortest
/// representation that reads back as the same number.
pub fn number(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

/// A record of `text` and where it ends (the byte after its line break).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub fields: Vec<String>,
    pub end: usize,
}

/// Every complete record of `text`: one that ends in a line break outside quotes. Whatever follows the last such
/// break (a line a killed writer left half-written) is not a record; `\r\n` ends a record too.
pub fn complete_records(text: &str) -> Vec<Record> {
    let mut records = Vec::new();
    let (mut fields, mut current) = (Vec::new(), String::new());
    let (mut quoted, mut after_quote) = (false, false);
    for (index, c) in text.char_indices() {
        if quoted {
            if c == '"' {
                quoted = false;
                after_quote = true;
            } else {
                current.push(c);
            }
            continue;
        }
        match c {
            // `""` inside a quoted field is one quote: the field reopens right after closing.
            '"' if after_quote => {
                current.push('"');
                quoted = true;
                after_quote = false;
            }
            '"' if current.is_empty() => quoted = true,
            ',' => {
                fields.push(std::mem::take(&mut current));
                after_quote = false;
            }
            '\r' => {}
            '\n' => {
                fields.push(std::mem::take(&mut current));
                records.push(Record { fields: std::mem::take(&mut fields), end: index + 1 });
                after_quote = false;
            }
            other => {
                current.push(other);
                after_quote = false;
            }
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_half_lines_are_not_records() {
        let names = ["plain.png", "a,b.png", "say \"hi\".png", "two\nlines.png", ""];
        let mut text = String::new();
        for name in names {
            text.push_str(&line(&[name, "0", "0.5"]));
        }
        let records = complete_records(&text);
        assert_eq!(records.len(), names.len());
        for (record, name) in records.iter().zip(names) {
            assert_eq!(record.fields, [name, "0", "0.5"]);
        }
        assert_eq!(records.last().unwrap().end, text.len());
        // A writer killed mid-line: the half line is left out, and the record before it ends where it did.
        let cut = format!("{text}x.png,1,0.2");
        assert_eq!(complete_records(&cut), records);
        let cut_in_quotes = format!("{text}\"c,d");
        assert_eq!(complete_records(&cut_in_quotes).len(), names.len());
        assert_eq!(complete_records("a,b\r\n")[0].fields, ["a", "b"]);
    }
}
