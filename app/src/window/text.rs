//! Text that never widens the layout. In egui a label laid out without wrapping (any label in `ui.horizontal`)
//! grows its parent past the window when it is long, and the parent hands that width to everything drawn after
//! it: a notice wider than the window once pushed half the tiles and every analysis tab off-screen. So every text
//! whose length we do not control — messages, errors, file, folder and model names — goes through here: messages
//! wrap to the width they are given and are cut after a few rows (the whole text on hover, and a "More" button that
//! shows it all), names are shortened in the middle (the whole name on hover), keeping their start and extension.

use eframe::egui::{self, Color32};

/// Rows of a message shown before it is cut.
pub const MESSAGE_ROWS: usize = 3;

/// Characters of a file, folder or model name shown in one line of the status line or a menu.
pub const NAME_CHARS: usize = 60;

/// `text` wrapped to `width`, cut after `max_rows` rows (`None`: never). The label shows the whole text on hover
/// when it was cut; returns whether it was.
pub fn wrapped_message(ui: &mut egui::Ui, text: &str, color: Color32, width: f32, max_rows: Option<usize>) -> bool {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let mut job = egui::text::LayoutJob::simple(text.to_owned(), font, color, width.max(1.0));
    if let Some(rows) = max_rows {
        job.wrap.max_rows = rows;
    }
    let galley = ui.fonts_mut(|fonts| fonts.layout_job(job));
    let cut = galley.elided;
    ui.add(egui::Label::new(galley));
    cut
}

/// A name shortened to at most `max_chars` characters by replacing its middle with "…", so both the start and the
/// end (a file's extension, a model's last folder) stay readable.
pub fn shortened(name: &str, max_chars: usize) -> String {
    let length = name.chars().count();
    if length <= max_chars {
        return name.to_owned();
    }
    let kept = max_chars.saturating_sub(1);
    let tail = kept / 2;
    let head = kept - tail;
    let start: String = name.chars().take(head).collect();
    let end: String = name.chars().skip(length - tail).collect();
    format!("{start}…{end}")
}

/// A name shortened in the middle (as [`shortened`]) to fit `width` points in `font`: for columns of a fixed width.
pub fn shortened_to_width(ui: &egui::Ui, name: &str, font: &egui::FontId, width: f32) -> String {
    let fits = |text: &str| {
        ui.fonts_mut(|fonts| fonts.layout_no_wrap(text.to_owned(), font.clone(), Color32::WHITE)).size().x <= width
    };
    let length = name.chars().count();
    (1..=length).rev().map(|chars| shortened(name, chars)).find(|text| fits(text)).unwrap_or_else(|| "…".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_start_and_end() {
        assert_eq!(shortened("chelsea.png", 20), "chelsea.png");
        let long = format!("{}-photo.png", "x".repeat(300));
        let short = shortened(&long, 21);
        assert_eq!(short.chars().count(), 21);
        assert!(short.starts_with("xxxxxxxxxx") && short.ends_with("-photo.png"), "{short}");
        // Characters, not bytes: a name in another script is cut between characters.
        assert_eq!(shortened("ÄÖÜäöüß", 5), "ÄÖ…üß");
    }
}
