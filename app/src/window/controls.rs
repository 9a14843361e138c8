//! The control panel on the left: mask ratio, seed, mask mode, display options.

use eframe::egui;
use mae_model::masking::len_keep;

use super::app::MaeApp;
use super::settings::MaskMode;
use crate::render::panels::MaskedStyle;

/// The label of the ratio slider (tests find the slider by it).
pub const RATIO_LABEL: &str = "Mask ratio";
pub const SEED_LABEL: &str = "Seed";

pub fn control_panel(app: &mut MaeApp, ui: &mut egui::Ui) {
    egui::Panel::left("controls").default_size(270.0).min_size(220.0).show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            // Room for the value box and the label beside the slider, so the panel never has to grow.
            ui.spacing_mut().slider_width = (ui.available_width() - 150.0).clamp(80.0, 240.0);
            model_section(app, ui);
            ui.separator();
            ui.heading("Masking");
            mask_mode(app, ui);
            ui.add_space(4.0);
            ratio(app, ui);
            seed(app, ui);
            if app.settings.mask_mode == MaskMode::Painted {
                painted_tools(app, ui);
            }
            ui.separator();
            ui.heading("Display");
            display(app, ui);
            ui.separator();
            ui.heading("Panels");
            panel_toggles(app, ui);
        });
    });
}

/// Devices offered in the model section.
const DEVICES: [&str; 4] = ["auto", "cpu", "cuda", "metal"];

fn model_section(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.heading("Model");
    let mut typed = app.model_field.clone();
    let field =
        ui.add(egui::TextEdit::singleline(&mut typed).hint_text("owner/name, folder or weights file")).on_hover_text(
            "A Hugging Face model id (facebook/vit-mae-base), a model folder, or a .safetensors/.bin/.pth file",
        );
    let mut device = app.device_arg.clone();
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("device")
            .selected_text(device.clone())
            .show_ui(ui, |ui| {
                for choice in DEVICES {
                    ui.selectable_value(&mut device, choice.to_string(), choice);
                }
            })
            .response
            .on_hover_text("Where the model runs: auto picks a GPU this build supports, else the CPU");
        let submit = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
        let loading = app.loading_model.is_some();
        if (ui
            .add_enabled(!loading, egui::Button::new("Load"))
            .on_hover_text("Load this model on this device")
            .clicked()
            || submit)
            && !typed.trim().is_empty()
        {
            app.load_model(typed.trim().to_string(), device.clone());
        }
    });
    if device != app.device_arg {
        // Changing the device reloads the current model there.
        let model = app.model_arg.clone();
        app.load_model(model, device);
    }
    if app.loading_model.is_none() {
        app.model_field = typed;
    }
}

fn mask_mode(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        let mut mode = app.settings.mask_mode;
        ui.radio_value(&mut mode, MaskMode::Random, "Random")
            .on_hover_text("HF's random masking: the mask torch.manual_seed(seed) draws at the mask ratio");
        ui.radio_value(&mut mode, MaskMode::Painted, "Painted")
            .on_hover_text("Choose the masked patches yourself: click or drag over the original or masked picture");
        if mode != app.settings.mask_mode {
            app.set_mask_mode(mode);
        }
    });
}

fn ratio(app: &mut MaeApp, ui: &mut egui::Ui) {
    let painted = app.settings.mask_mode == MaskMode::Painted;
    ui.add_enabled_ui(!painted, |ui| {
        ui.add(
            egui::Slider::new(&mut app.settings.mask_ratio, 0.0..=1.0)
                .text(RATIO_LABEL)
                .step_by(0.001)
                .fixed_decimals(3),
        )
        .on_hover_text(
            "Fraction of patches hidden from the encoder (←/→ change it by 0.01). Type an exact value in the box.",
        )
        .on_disabled_hover_text("In painted mode the painted patches decide what is masked");
    });
    if let Some((rows, cols)) = app.grid() {
        let patches = rows * cols;
        let masked = match (&app.settings.mask_mode, app.shown.as_ref()) {
            (MaskMode::Painted, _) => app.painted_mask.iter().filter(|&&m| m).count(),
            _ => patches - len_keep(patches, app.settings.mask_ratio),
        };
        ui.weak(format!("{masked} of {patches} patches masked ({:.3})", masked as f64 / patches as f64))
            .on_hover_text("The model keeps int(L·(1−ratio)) patches, as Hugging Face does");
    }
}

fn seed(app: &mut MaeApp, ui: &mut egui::Ui) {
    let painted = app.settings.mask_mode == MaskMode::Painted;
    ui.add_enabled_ui(!painted, |ui| {
        ui.horizontal(|ui| {
            ui.label(SEED_LABEL);
            ui.add(egui::DragValue::new(&mut app.settings.seed).speed(1.0).range(0..=u32::MAX as u64))
                .on_hover_text("The mask torch.manual_seed(seed); torch.rand(1, L) gives (drag or type)");
            if ui.button("New random seed").on_hover_text("Pick another random mask (R)").clicked() {
                app.new_random_seed();
            }
        });
    });
}

fn painted_tools(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        if ui.button("Mask all").on_hover_text("Hide every patch from the encoder").clicked() {
            app.painted_mask.iter_mut().for_each(|m| *m = true);
        }
        if ui.button("Show all").on_hover_text("Let the encoder see every patch").clicked() {
            app.painted_mask.iter_mut().for_each(|m| *m = false);
        }
        if ui.button("Invert").on_hover_text("Swap masked and visible patches").clicked() {
            app.painted_mask.iter_mut().for_each(|m| *m = !*m);
        }
        if ui
            .button("From random")
            .on_hover_text("Start again from the random mask of the current seed and ratio")
            .clicked()
        {
            app.reset_painted_to_random();
        }
    });
}

fn display(app: &mut MaeApp, ui: &mut egui::Ui) {
    egui::ComboBox::from_label("Masked patches")
        .selected_text(app.settings.masked_style.name())
        .show_ui(ui, |ui| {
            for style in MaskedStyle::ALL {
                ui.selectable_value(&mut app.settings.masked_style, style, style.name());
            }
        })
        .response
        .on_hover_text("How hidden patches look in the masked panel");
    if ui
        .checkbox(&mut app.settings.nearest_filtering, "Crisp patches")
        .on_hover_text("Nearest-neighbour scaling: patch edges stay sharp instead of blurred")
        .changed()
    {
        app.reupload_textures(ui.ctx());
    }
    ui.checkbox(&mut app.settings.dark_theme, "Dark theme").on_hover_text("Switch dark/light colours");
}

/// The switches of the analysis sections, shown both here and in the View menu.
pub fn panel_toggles(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.checkbox(&mut app.settings.show_attention, "Attention")
        .on_hover_text("Attention maps: encoder or decoder, layer, head, rollout, query patch");
    ui.checkbox(&mut app.settings.show_loss, "Loss")
        .on_hover_text("Per-patch loss heatmap, its distribution and the loss-vs-ratio curve");
    ui.checkbox(&mut app.settings.show_ensemble, "Seed ensemble")
        .on_hover_text("Mean and spread of the reconstructions over several random masks");
}
