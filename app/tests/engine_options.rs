//! The engine options (`--device`, `--dtype`, `--kernels`) and `--model` as a user meets them: every command's
//! `--help` states them identically, with `auto` the default device, and a bad value of any closed set is refused
//! with one line naming it and its possible values, and exit code 2.

use std::process::{Command, Output};

const COMMANDS: [&str; 6] = ["dump", "heads", "bench", "export", "loss-curve", "eval"];

fn mae_explorer(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mae-explorer")).args(arguments).output().expect("the binary runs")
}

fn help(command: Option<&str>) -> String {
    let mut arguments: Vec<&str> = command.into_iter().collect();
    arguments.push("--help");
    let output = mae_explorer(&arguments);
    assert_eq!(output.status.code(), Some(0), "{arguments:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The entry of `option` in a `--help` text: its heading line and every line up to the next option or section,
/// without trailing blank lines.
fn option_entry(help: &str, option: &str) -> String {
    let is_heading = |line: &str| line.trim_start().starts_with('-') && line.len() - line.trim_start().len() <= 6;
    let mut lines = help.lines().skip_while(|line| !(is_heading(line) && line.trim_start().starts_with(option)));
    let heading = lines.next().unwrap_or_else(|| panic!("no {option} in:\n{help}"));
    let body = lines.take_while(|line| !is_heading(line) && (line.is_empty() || line.starts_with(' ')));
    let entry: Vec<&str> = std::iter::once(heading).chain(body).collect();
    entry.join("\n").trim_end().to_string()
}

#[test]
fn every_command_states_the_engine_options_and_model_the_same_way() {
    let helps: Vec<(&str, String)> = COMMANDS.iter().map(|command| (*command, help(Some(command)))).collect();
    let expected = [
        ("--model ", "owner/name[@revision]"),
        ("--device ", "[default: auto]"),
        ("--device ", "[possible values: auto, cpu, cuda, metal]"),
        ("--dtype ", "[default: f32]"),
        ("--dtype ", "[possible values: f32, f16, bf16]"),
        ("--kernels ", "[default: fused]"),
        ("--kernels ", "[possible values: fused, candle]"),
    ];
    for (option, says) in expected {
        let (first_command, first_help) = &helps[0];
        let first = option_entry(first_help, option);
        assert!(first.contains(says), "{first_command} {option}should say {says}:\n{first}");
        for (command, help) in &helps[1..] {
            assert_eq!(option_entry(help, option), first, "{command} and {first_command} state {option}differently");
        }
    }
    let device = option_entry(&helps[0].1, "--device ");
    assert!(device.contains("the GPU when this build has one, else the CPU"), "{device}");
}

#[test]
fn the_window_offers_the_same_values_and_defaults_to_the_last_ones_used() {
    let window = help(None);
    let device = option_entry(&window, "--device ");
    assert!(device.contains("[default: the last one used, else auto]"), "{device}");
    assert!(device.contains("[possible values: auto, cpu, cuda, metal]"), "{device}");
    assert!(!device.contains("[default: auto]"), "the window remembers its device: {device}");
    let dtype = option_entry(&window, "--dtype ");
    assert!(dtype.contains("[default: the last one used, else f32]"), "{dtype}");
    assert!(dtype.contains("[possible values: f32, f16, bf16]"), "{dtype}");
}

/// Runs `arguments` and checks the refusal: exit code 2, one line on stderr naming every text in `names`.
fn assert_refused(arguments: &[&str], names: &[&str]) {
    let output = mae_explorer(arguments);
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{arguments:?}: {message}");
    assert_eq!(message.trim_end().lines().count(), 1, "{arguments:?}: {message}");
    for name in names {
        assert!(message.contains(name), "{arguments:?} should name {name}: {message}");
    }
}

#[test]
fn bad_values_are_refused_in_one_line_with_the_possible_values_and_exit_code_2() {
    for command in COMMANDS {
        assert_refused(&[command, "--device", "tpu"], &["'tpu'", "--device", "auto, cpu, cuda, metal"]);
        assert_refused(&[command, "--dtype", "f64"], &["'f64'", "--dtype", "f32, f16, bf16"]);
        assert_refused(&[command, "--kernels", "cudnn"], &["'cudnn'", "--kernels", "fused, candle"]);
    }
    assert_refused(&["--device", "tpu"], &["'tpu'", "auto, cpu, cuda, metal"]);
    assert_refused(&["--dtype", "f64"], &["'f64'", "f32, f16, bf16"]);
    assert_refused(&["heads", "--colormap", "jet"], &["'jet'", "viridis, inferno, magma, turbo, cividis"]);
    assert_refused(&["export", "--masked-style", "plaid"], &["'plaid'", "mean-grey, dimmed, checker"]);
    // Not a bad value, but the same promise: one line, and no usage block.
    assert_refused(&["dump", "--model", "demo"], &["required", "--out"]);
}
