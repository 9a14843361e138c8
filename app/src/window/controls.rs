//! The control panel on the left: model and device, mask ratio, seed, mask mode, display options.

use eframe::egui;
use mae_model::DeviceChoice;
use mae_model::device::COMPUTE_DTYPES;
use mae_model::masking::len_keep;

use super::session::{MaskMode, Session};
use crate::render::panels::MaskedStyle;

/// The label of the ratio slider (tests find the slider by it).
pub const RATIO_LABEL: &str = "Mask ratio";
pub const SEED_LABEL: &str = "Seed";

pub fn control_panel(session: &mut Session, ui: &mut egui::Ui) {
    egui::Panel::left("controls").default_size(250.0).min_size(210.0).show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            // Room for the value box and the label beside the slider, so the panel never has to grow.
            ui.spacing_mut().slider_width = (ui.available_width() - 150.0).clamp(80.0, 240.0);
            model_section(session, ui);
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
    let loading = session.loading.is_some();
    let field = ui
        .add_enabled(
            !loading,
            egui::TextEdit::singleline(&mut session.model_field).hint_text("owner/name, folder or weights file"),
        )
        .on_hover_text(
            "A Hugging Face model id (facebook/vit-mae-base), a model folder, or a .safetensors/.bin/.pth file",
        );
    let submitted = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
    let (mut device, mut dtype) = (session.device, session.dtype);
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
                    for (name, choice) in COMPUTE_DTYPES {
                        ui.selectable_value(&mut dtype, choice, name);
                    }
                })
                .response
                .on_hover_text("Compute precision: f16/bf16 are faster on GPUs; the CPU computes in f32")
                .on_disabled_hover_text("The CPU computes in f32");
        });
        let load = ui.add_enabled(!loading, egui::Button::new("Load")).on_hover_text("Load this model on this device");
        if (load.clicked() || submitted) && !session.model_field.trim().is_empty() {
            let model = session.model_field.trim().to_string();
            session.load_model(model, device, dtype);
        }
    });
    if device == DeviceChoice::Cpu {
        dtype = candle_core::DType::F32;
    }
    if (device, dtype) != (session.device, session.dtype) && !loading {
        // Another device or dtype reloads the current model there.
        let model = session.model_arg.clone();
        session.load_model(model, device, dtype);
    }
}

fn mask_mode(session: &mut Session, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        let mut mode = session.settings.mask_mode;
        ui.radio_value(&mut mode, MaskMode::Random, "Random")
            .on_hover_text("HF's random masking: the mask torch.manual_seed(seed) draws at the mask ratio");
        ui.radio_value(&mut mode, MaskMode::Painted, "Painted")
            .on_hover_text("Choose the masked patches yourself: click or drag over the original or masked picture");
        if mode != session.settings.mask_mode {
            session.set_mask_mode(mode);
        }
    });
}

fn ratio(session: &mut Session, ui: &mut egui::Ui) {
    let painted = session.settings.mask_mode == MaskMode::Painted;
    ui.add_enabled_ui(!painted, |ui| {
        ui.add(
            egui::Slider::new(&mut session.settings.mask_ratio, 0.0..=1.0)
                .text(RATIO_LABEL)
                .step_by(0.001)
                .fixed_decimals(3),
        )
        .on_hover_text(
            "Fraction of patches hidden from the encoder (←/→ change it by 0.01). Type an exact value in the box.",
        )
        .on_disabled_hover_text("In painted mode the painted patches decide what is masked");
    });
    if let Some((rows, cols)) = session.grid() {
        let patches = rows * cols;
        let masked = match session.settings.mask_mode {
            MaskMode::Painted => session.painted_mask.iter().filter(|&&m| m).count(),
            MaskMode::Random => patches - len_keep(patches, session.settings.mask_ratio),
        };
        ui.weak(format!("{masked} of {patches} patches masked ({:.3})", masked as f64 / patches as f64))
            .on_hover_text("The model keeps int(L·(1−ratio)) patches, as Hugging Face does");
    }
}

fn seed(session: &mut Session, ui: &mut egui::Ui) {
    let painted = session.settings.mask_mode == MaskMode::Painted;
    ui.add_enabled_ui(!painted, |ui| {
        ui.horizontal(|ui| {
            ui.label(SEED_LABEL);
            ui.add(egui::DragValue::new(&mut session.settings.seed).speed(1.0).range(0..=u32::MAX as u64))
                .on_hover_text("The mask torch.manual_seed(seed); torch.rand(1, L) gives (drag or type)");
            if ui.button("New random seed").on_hover_text("Pick another random mask (R)").clicked() {
                session.new_random_seed();
            }
        });
    });
}

fn painted_tools(session: &mut Session, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        if ui.button("Mask all").on_hover_text("Hide every patch from the encoder").clicked() {
            session.painted_mask.iter_mut().for_each(|m| *m = true);
        }
        if ui.button("Show all").on_hover_text("Let the encoder see every patch").clicked() {
            session.painted_mask.iter_mut().for_each(|m| *m = false);
        }
        if ui.button("Invert").on_hover_text("Swap masked and visible patches").clicked() {
            session.painted_mask.iter_mut().for_each(|m| *m = !*m);
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
