//! The control panel on the left: model and device, mask ratio, seed, mask mode, display options.

use eframe::egui;
use mae_model::masking::len_keep;
use mae_model::{ComputeDtype, DeviceChoice, SizeRule};

use super::file_request::FileRequest;
use super::session::{MaskMode, Session};
use super::text;
use crate::render::panels::MaskedStyle;
use crate::worker::{MAX_MODELS, model_letter};

/// The label of the ratio slider (tests find the slider by it).
pub const RATIO_LABEL: &str = "Mask ratio";
const SEED_LABEL: &str = "Seed";
pub const MASK_LABEL: &str = "Mask";

pub fn control_panel(session: &mut Session, ui: &mut egui::Ui) {
    egui::Panel::left("controls").default_size(250.0).min_size(210.0).show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            // Room for the value box and the label beside the slider, so the panel never has to grow.
            ui.spacing_mut().slider_width = (ui.available_width() - 150.0).clamp(80.0, 240.0);
            model_section(session, ui);
            compare_section(session, ui);
            ui.separator();
            ui.heading("Masking");
            mask_mode(session, ui);
            ui.add_space(4.0);
            ratio(session, ui);
            seed(session, ui);
            if session.settings.mask_mode == MaskMode::Painted {
                painted_tools(session, ui);
            }
            ui.separator();
            ui.heading("Display");
            display(session, ui);
        });
    });
}

fn model_section(session: &mut Session, ui: &mut egui::Ui) {
    ui.heading("Model");
    let loading = session.model().loading.is_some();
    let field = ui
        .add_enabled(
            !loading,
            // The panel's width, however long the path in it: a wider field would widen the panel.
            egui::TextEdit::singleline(&mut session.model_mut().field)
                .hint_text("owner/name, folder or weights file")
                .desired_width(f32::INFINITY),
        )
        .on_hover_text(
            "A Hugging Face model id (facebook/vit-mae-base), a model folder, or a .safetensors/.bin/.pth file",
        );
    let submitted = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
    let (mut device, mut dtype) = (session.model().device, session.model().dtype);
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("device")
            .selected_text(device.name())
            .show_ui(ui, |ui| {
                for choice in DeviceChoice::ALL {
                    ui.add_enabled_ui(choice.is_built_in(), |ui| {
                        ui.selectable_value(&mut device, choice, choice.name())
                    })
                    .response
                    .on_disabled_hover_text(format!("This build has no {choice} support"));
                }
            })
            .response
            .on_hover_text("Where the model runs: auto picks a GPU this build supports, else the CPU");
        ui.add_enabled_ui(device != DeviceChoice::Cpu, |ui| {
            egui::ComboBox::from_id_salt("dtype")
                .selected_text(mae_model::dtype_name(dtype))
                .show_ui(ui, |ui| {
                    for choice in ComputeDtype::ALL {
                        ui.selectable_value(&mut dtype, choice.dtype(), choice.name());
                    }
                })
                .response
                .on_hover_text("Compute precision: f16/bf16 are faster on GPUs; the CPU computes in f32")
                .on_disabled_hover_text("The CPU computes in f32");
        });
        let load = ui.add_enabled(!loading, egui::Button::new("Load")).on_hover_text("Load this model on this device");
        if (load.clicked() || submitted) && !session.model().field.trim().is_empty() {
            (session.model_mut().device, session.model_mut().dtype) = (device, dtype);
            let model = session.model().field.trim().to_string();
            session.load_model(model);
        }
    });
    size_control(session, ui);
    if device == DeviceChoice::Cpu {
        dtype = candle_core::DType::F32;
    }
    if (device, dtype) != (session.model().device, session.model().dtype) && !loading {
        // Another device or dtype reloads the current model there.
        (session.model_mut().device, session.model_mut().dtype) = (device, dtype);
        let model = session.model().arg.clone();
        session.load_model(model);
    }
}

/// The label beside the Size control (tests find the control by it).
pub const SIZE_LABEL: &str = "Size";
/// The accessible name of the custom size field.
pub const CUSTOM_SIZE_LABEL: &str = "Custom size";

/// The Size control: the picture fed at the model's input size, at its own shape, or at a typed W×H (applied on
/// Enter; a size that cannot be used says why in the message line).
fn size_control(session: &mut Session, ui: &mut egui::Ui) {
    let model_size = session.model().info().map(|info| info.image_size);
    let model_text = model_size.map_or("model's".to_string(), |(height, width)| format!("model's ({width}×{height})"));
    let current = session.settings.size;
    let mut choice = current;
    let field_id = ui.make_persistent_id("custom size");
    let default_text = match current {
        SizeRule::Exact { .. } => current.to_string(),
        _ => model_size.map_or("224x224".to_string(), |(height, width)| format!("{width}x{height}")),
    };
    let mut text: String = ui.data_mut(|data| data.get_temp(field_id)).unwrap_or(default_text);
    ui.horizontal(|ui| {
        let selected = match current {
            SizeRule::Model => model_text.clone(),
            SizeRule::Native => "picture's own".to_string(),
            SizeRule::Exact { width, height } => format!("{width}×{height}"),
        };
        egui::ComboBox::from_id_salt("size")
            .selected_text(selected)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut choice, SizeRule::Model, model_text);
                ui.selectable_value(&mut choice, SizeRule::Native, "picture's own");
                let custom = ui.selectable_label(matches!(current, SizeRule::Exact { .. }), "custom W×H");
                if custom.clicked() {
                    choice = text.parse().unwrap_or(current);
                }
            })
            .response
            .on_hover_text(
                "The size the picture is fed to the model at: the model's input size (every picture squashed to it), \
                 the picture's own shape (the longer side at most 1024 px, sides floored to multiples of the patch \
                 size), or a custom width×height; other sizes than the model's run with interpolated position \
                 embeddings, as transformers' interpolate_pos_encoding",
            );
        ui.label(SIZE_LABEL);
        if matches!(current, SizeRule::Exact { .. }) {
            let field = ui.add(
                egui::TextEdit::singleline(&mut text).desired_width(80.0).hint_text("WxH").id_salt(CUSTOM_SIZE_LABEL),
            );
            field.widget_info(|| egui::WidgetInfo::labeled(egui::Role::TextInput, true, CUSTOM_SIZE_LABEL));
            if field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter)) {
                match text.parse::<SizeRule>() {
                    Ok(size) => choice = size,
                    Err(error) => session.show_error(format!("size: {error}")),
                }
            }
        }
    });
    ui.data_mut(|data| data.insert_temp(field_id, text));
    if choice != current {
        session.set_size(choice);
    }
    if let (Some((height, width)), false) = (session.input_size(), current == SizeRule::Model) {
        ui.weak(format!("the picture is fed at {width}×{height}"));
    }
}

/// Accessible names of the comparison's controls (and what tests look for): the field, and each compared
/// model's buttons, named with its letter (`close_label(1)` is "Close B").
pub const COMPARE_FIELD_LABEL: &str = "Compare with";
const COMPARE_BUTTON: &str = "Compare";

pub fn close_label(index: usize) -> String {
    format!("Close {}", model_letter(index))
}

pub fn swap_label(index: usize) -> String {
    format!("Swap A/{}", model_letter(index))
}

/// "Compare with": models to run beside A (up to three), each with its name, Swap and Close, and the field for
/// the next one while there is room and nothing is loading.
fn compare_section(session: &mut Session, ui: &mut egui::Ui) {
    ui.add_space(4.0);
    let mut swap = None;
    let mut close = None;
    for (index, slot) in session.compared() {
        let letter = model_letter(index);
        let name = match (&slot.loading, slot.info()) {
            (Some(loading), _) => format!("{letter}: loading {}…", text::shortened(&loading.model, text::NAME_CHARS)),
            (None, Some(info)) => format!("{letter}: {}", text::shortened(&info.name, text::NAME_CHARS)),
            (None, None) => format!("{letter}: none"),
        };
        let ready = slot.info().is_some();
        ui.horizontal_wrapped(|ui| {
            ui.label(name);
            let button = ui.add_enabled(ready, egui::Button::new(swap_label(index)));
            if button.on_hover_text(format!("Make {letter} model A and A model {letter}")).clicked() {
                swap = Some(index);
            }
            let hint = format!("End the comparison with {letter} and free its memory");
            if ui.button(close_label(index)).on_hover_text(hint).clicked() {
                close = Some(index);
            }
        });
    }
    if let Some(index) = swap {
        session.swap_with_first(index);
    }
    if let Some(index) = close {
        session.close_compared(index);
    }
    let loading = session.compared().any(|(_, slot)| slot.loading.is_some());
    if session.models.len() >= MAX_MODELS || loading {
        return;
    }
    // What is typed lives in egui's memory: the session has no use for it until Compare is pressed.
    let id = ui.make_persistent_id("compare field");
    let mut text = ui.data_mut(|data| data.get_temp::<String>(id)).unwrap_or_default();
    let mut submitted = false;
    let letter = model_letter(session.models.len());
    ui.horizontal(|ui| {
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut text)
                    .hint_text(if letter == 'B' { "second model".to_string() } else { format!("model {letter}") })
                    .desired_width(ui.available_width() - 80.0),
            )
            .on_hover_text(format!(
                "Model {letter}: a hub id, model folder, weights file or demo, run beside A on the same mask"
            ));
        field.widget_info(|| egui::WidgetInfo::labeled(egui::Role::TextInput, true, COMPARE_FIELD_LABEL));
        let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
        let button = ui
            .add_enabled(!text.trim().is_empty(), egui::Button::new(COMPARE_BUTTON))
            .on_hover_text(format!("Load model {letter} and show it beside A in the Compare panel"));
        submitted = (entered || button.clicked()) && !text.trim().is_empty();
    });
    if submitted {
        session.compare_with([text.trim().to_string()]);
        text.clear();
    }
    ui.data_mut(|data| data.insert_temp(id, text));
}

fn mask_mode(session: &mut Session, ui: &mut egui::Ui) {
    let mut mode = session.settings.mask_mode;
    egui::ComboBox::from_label(MASK_LABEL)
        .selected_text(mode.label())
        .show_ui(ui, |ui| {
            for choice in MaskMode::ALL {
                ui.selectable_value(&mut mode, choice, choice.label()).on_hover_text(choice.description());
            }
        })
        .response
        .on_hover_text(mode.description());
    if mode != session.settings.mask_mode {
        if mode == MaskMode::Image && session.mask.picture.is_none() {
            // Nothing to mask with yet: ask for the picture; the mode changes when it arrives.
            session.files.ask(FileRequest::OpenMask, ui.ctx());
        } else {
            session.set_mask_mode(mode);
        }
    }
    if session.settings.mask_mode == MaskMode::Image {
        ui.horizontal(|ui| {
            let name = session.mask.picture.as_ref().map_or("no picture", |picture| picture.name.as_str());
            ui.add(egui::Label::new(name).truncate()).on_hover_text(name);
            if ui.button("Open mask…").on_hover_text("A picture whose white areas are masked").clicked() {
                session.files.ask(FileRequest::OpenMask, ui.ctx());
            }
        });
    }
}

fn ratio(session: &mut Session, ui: &mut egui::Ui) {
    let mode = session.settings.mask_mode;
    let unused = mode.ratio_unused_because();
    ui.add_enabled_ui(unused.is_none(), |ui| {
        let slider = ui
            .add(
                egui::Slider::new(&mut session.settings.mask_ratio, 0.0..=1.0)
                    .text(RATIO_LABEL)
                    .step_by(0.001)
                    .fixed_decimals(3),
            )
            .on_hover_text(
                "Fraction of patches hidden from the encoder (the Left/Right arrow keys change it by 0.01). Type an \
                 exact value in the box. While dragged, the pictures come from the sweep computed in the background; \
                 let go for the exact forward pass with attention maps.",
            )
            .on_disabled_hover_text(unused.unwrap_or_default());
        session.forwards.held_by_pointer = slider.is_pointer_button_down_on();
    });
    if let Some((rows, cols)) = session.grid() {
        let patches = rows * cols;
        let asked = patches - len_keep(patches, session.settings.mask_ratio);
        // The mask on screen says how many it hid; before it arrives, the painted or asked-for count.
        let on_screen = session
            .result()
            .filter(|_| session.is_up_to_date())
            .map(|result| result.first())
            .map(|first| (first.masked_patches().iter().filter(|&&masked| masked).count(), first.requested_masked));
        let (masked, requested) = match (mode, on_screen) {
            (MaskMode::Painted, _) => (session.mask.painted.iter().filter(|&&m| m).count(), None),
            (_, Some(counted)) => counted,
            (_, None) => (asked, None),
        };
        let short = requested.filter(|&requested| requested != masked);
        let fraction = masked as f64 / patches as f64;
        let text = match (short, mode) {
            // Not a shortfall: the largest centred rectangle that fits the count asked for is simply that big.
            (Some(requested), MaskMode::Centre) => format!(
                "{masked} of {patches} patches masked ({fraction:.3}): the largest centred rectangle within the \
                 {requested} asked"
            ),
            (Some(requested), _) => format!(
                "{masked} of {patches} patches masked ({requested} asked: BEiT's block generator stopped short, as \
                 transformers' does)"
            ),
            (None, _) => format!("{masked} of {patches} patches masked ({fraction:.3})"),
        };
        ui.add(egui::Label::new(egui::RichText::new(text).weak()).wrap()).on_hover_text(
            "Random, block and centre masks aim for L − int(L·(1−ratio)) patches, the count Hugging Face hides",
        );
    }
}

fn seed(session: &mut Session, ui: &mut egui::Ui) {
    let uses_seed = session.settings.mask_mode.uses_seed();
    ui.add_enabled_ui(uses_seed, |ui| {
        ui.horizontal(|ui| {
            ui.label(SEED_LABEL);
            ui.add(egui::DragValue::new(&mut session.settings.seed).speed(1.0).range(0..=u32::MAX as u64))
                .on_hover_text(
                    "The seed of the mask: torch.manual_seed for random, random.seed for block, the kept corner of \
                     each 2×2 for grid (drag or type)",
                );
            if ui.button("New random seed").on_hover_text("Pick another random mask (R)").clicked() {
                session.new_random_seed();
            }
        });
    })
    .response
    .on_disabled_hover_text("This mask does not depend on a seed");
}

fn painted_tools(session: &mut Session, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        if ui.button("Mask all").on_hover_text("Hide every patch from the encoder").clicked() {
            session.mask.painted.iter_mut().for_each(|m| *m = true);
        }
        if ui.button("Show all").on_hover_text("Let the encoder see every patch").clicked() {
            session.mask.painted.iter_mut().for_each(|m| *m = false);
        }
        if ui.button("Invert").on_hover_text("Swap masked and visible patches").clicked() {
            session.mask.painted.iter_mut().for_each(|m| *m = !*m);
        }
        if ui
            .button("From random")
            .on_hover_text("Start again from the random mask of the current seed and ratio")
            .clicked()
        {
            session.reset_painted_to_random();
        }
    });
}

fn display(session: &mut Session, ui: &mut egui::Ui) {
    let settings = &mut session.settings;
    egui::ComboBox::from_label("Masked patches")
        .selected_text(settings.masked_style.name())
        .show_ui(ui, |ui| {
            for style in MaskedStyle::ALL {
                ui.selectable_value(&mut settings.masked_style, style, style.name());
            }
        })
        .response
        .on_hover_text("How hidden patches look in the masked picture");
    ui.checkbox(&mut settings.nearest_filtering, "Crisp patches")
        .on_hover_text("Nearest-neighbour scaling: patch edges stay sharp instead of blurred");
    ui.checkbox(&mut settings.dark_theme, "Dark theme").on_hover_text("Switch dark/light colours");
}
