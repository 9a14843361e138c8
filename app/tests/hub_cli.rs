//! `--model owner/name` through the real binary, with the Hugging Face environment variables set on the child
//! process only: a fake cache in Python's layout, `HF_HUB_OFFLINE=1`, and a local listener standing in for the hub
//! to prove that offline mode never opens a connection.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// `models--facebook--vit-mae-base` as huggingface_hub writes it: blobs, a snapshot of links, `refs/main`.
fn fake_cache(cache: &Path) {
    let repo_dir = cache.join("models--facebook--vit-mae-base");
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (index, file) in ["config.json", "model.safetensors", "preprocessor_config.json"].iter().enumerate() {
        let blob = format!("{index:064x}");
        std::fs::copy(fixtures().join("models/tiny-p8").join(file), repo_dir.join("blobs").join(&blob)).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(Path::new("../../blobs").join(&blob), snapshot.join(file)).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(repo_dir.join("blobs").join(&blob), snapshot.join(file)).unwrap();
    }
    std::fs::write(repo_dir.join("refs/main"), COMMIT).unwrap();
}

/// Runs `dump` with only the given Hugging Face variables (the rest of the HF_* environment removed).
fn dump(model: &str, out: &Path, env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mae-explorer"));
    command
        .args(["dump", "--model", model, "--seed", "2", "--out"])
        .arg(out)
        .arg("--image")
        .arg(fixtures().join("preprocess/rgb.jpg"));
    for name in ["HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT"] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    let mut tensors: Vec<(String, Vec<u32>)> = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            let values = t.to_dtype(candle_core::DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (name, values.iter().map(|v| v.to_bits()).collect())
        })
        .collect();
    tensors.sort();
    tensors
}

#[test]
fn offline_hub_id_dumps_the_same_outputs_as_the_folder() {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    fake_cache(&cache);
    let from_hub = scratch.path().join("hub.safetensors");
    let offline = Path::new("1");
    let output = dump("facebook/vit-mae-base", &from_hub, &[("HF_HUB_CACHE", &cache), ("HF_HUB_OFFLINE", offline)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let from_folder = scratch.path().join("folder.safetensors");
    let folder = fixtures().join("models/tiny-p8");
    let output = dump(folder.to_str().unwrap(), &from_folder, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (hub, local) = (tensors(&from_hub), tensors(&from_folder));
    assert!(hub.len() >= 9, "only {} outputs", hub.len());
    assert_eq!(hub, local);

    // HF_HOME/hub is where the cache is when HF_HUB_CACHE is not set.
    let home = scratch.path().join("hf-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::rename(&cache, home.join("hub")).unwrap();
    std::fs::remove_file(&from_hub).unwrap();
    let output = dump("facebook/vit-mae-base", &from_hub, &[("HF_HOME", &home), ("HF_HUB_OFFLINE", offline)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(tensors(&from_hub), local);
}

#[test]
fn offline_miss_is_a_one_line_error_with_exit_code_2_and_no_connection() {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    fake_cache(&cache);
    // If anything tried the network it would come here first.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let out = scratch.path().join("out.safetensors");
    let env: [(&str, &Path); 3] =
        [("HF_HUB_CACHE", &cache), ("HF_HUB_OFFLINE", Path::new("1")), ("HF_ENDPOINT", Path::new(&endpoint))];
    for (model, expected) in [
        ("facebook/vit-mae-large", cache.join("models--facebook--vit-mae-large").display().to_string()),
        ("facebook/vit-mae-base@v2", "revision `v2`".to_string()),
    ] {
        let output = dump(model, &out, &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{model}: {stderr}");
        assert!(stderr.contains(model.split('@').next().unwrap()) && stderr.contains(&expected), "{model}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{model}: {stderr}");
        assert!(!out.exists(), "{model}: a failed run wrote {}", out.display());
    }
    assert!(listener.accept().is_err(), "offline mode connected to the hub endpoint");
}
