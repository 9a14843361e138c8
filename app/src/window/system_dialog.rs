//! Whether the system's file dialog can open here. rfd shows it through the xdg desktop portal
//! (`org.freedesktop.portal.FileChooser` on the D-Bus session bus) and falls back to zenity; where neither is
//! there (an X session over SSH, a bare window manager, Xvfb) it returns no file, exactly as for a cancel, and
//! nothing on screen says why. So the window asks first, once, off the UI thread: zenity on PATH, or a portal
//! that answers on the session bus (asked with `dbus-send`, killed if it takes more than a few seconds).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemDialog {
    Available,
    /// Why not, in one line.
    Unavailable(String),
}

/// The portal's answer to "which FileChooser version do you implement?" may take a moment when the bus has to
/// start the portal first; longer than this and it is taken as absent.
const PORTAL_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks this machine (the environment, PATH, the session bus).
pub fn detect() -> SystemDialog {
    let portal_or_zenity = cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ));
    if !portal_or_zenity {
        // Windows and macOS dialogs are part of the system and always open.
        return SystemDialog::Available;
    }
    detect_with(&|name| std::env::var_os(name), &|address| portal_answers(address, PORTAL_TIMEOUT))
}

/// The check, given the environment and a way to ask the bus at an address whether the portal answers (`Err`:
/// it could not be asked).
fn detect_with(
    env: &dyn Fn(&str) -> Option<OsString>,
    portal_answers: &dyn Fn(&str) -> Result<bool, String>,
) -> SystemDialog {
    if env("PATH").is_some_and(|path| std::env::split_paths(&path).any(|folder| is_executable(&folder.join("zenity"))))
    {
        return SystemDialog::Available;
    }
    let Some(address) = session_bus_address(env) else {
        return SystemDialog::Unavailable(
            "no system file dialog: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set) and no zenity on PATH"
                .into(),
        );
    };
    match portal_answers(&address) {
        Ok(true) => SystemDialog::Available,
        Ok(false) => SystemDialog::Unavailable(
            "no system file dialog: no org.freedesktop.portal.FileChooser on the session bus and no zenity on PATH"
                .into(),
        ),
        Err(problem) => SystemDialog::Unavailable(format!(
            "no system file dialog: the desktop portal could not be asked for ({problem}) and there is no zenity on \
             PATH"
        )),
    }
}

/// The session bus as libdbus finds it: `DBUS_SESSION_BUS_ADDRESS`, else the user's bus socket.
fn session_bus_address(env: &dyn Fn(&str) -> Option<OsString>) -> Option<String> {
    if let Some(address) = env("DBUS_SESSION_BUS_ADDRESS").filter(|address| !address.is_empty()) {
        return Some(address.to_string_lossy().into_owned());
    }
    let socket = PathBuf::from(env("XDG_RUNTIME_DIR")?).join("bus");
    socket.exists().then(|| format!("unix:path={}", socket.display()))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Asks the bus at `address` for the FileChooser portal's version: an answer means the portal is there.
fn portal_answers(address: &str, timeout: Duration) -> Result<bool, String> {
    let reply_timeout = format!("--reply-timeout={}", timeout.as_millis());
    let mut child = Command::new("dbus-send")
        .args(["--session", "--print-reply", &reply_timeout, "--dest=org.freedesktop.portal.Desktop"])
        .args(["/org/freedesktop/portal/desktop", "org.freedesktop.DBus.Properties.Get"])
        .args(["string:org.freedesktop.portal.FileChooser", "string:version"])
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("dbus-send: {error}"))?;
    // dbus-send has its own reply timeout, but not for connecting: never wait much longer than that.
    let deadline = Instant::now() + timeout + Duration::from_secs(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.success()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(false);
            }
            Err(error) => return Err(format!("dbus-send: {error}")),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn env_of(vars: Vec<(&'static str, OsString)>) -> impl Fn(&str) -> Option<OsString> {
        move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone())
    }

    #[test]
    fn zenity_on_path_is_enough() {
        let folder = tempfile::tempdir().unwrap();
        let zenity = folder.path().join("zenity");
        std::fs::write(&zenity, "#!/bin/sh\n").unwrap();
        let env = env_of(vec![("PATH", folder.path().into())]);
        let never_asked = |_: &str| -> Result<bool, String> { panic!("the bus is not asked when zenity is there") };
        // Not executable: not a program.
        assert_ne!(detect_with(&env, &|_| Ok(false)), SystemDialog::Available);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&zenity, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(detect_with(&env, &never_asked), SystemDialog::Available);
    }

    #[test]
    fn without_a_session_bus_or_a_portal_on_it_the_reason_is_given() {
        let no_bus = env_of(vec![("PATH", "/nonexistent".into())]);
        let SystemDialog::Unavailable(why) = detect_with(&no_bus, &|_| Ok(true)) else { panic!("no bus: unavailable") };
        assert!(why.contains("DBUS_SESSION_BUS_ADDRESS") && why.contains("zenity"), "{why}");

        let bus = env_of(vec![("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus".into())]);
        let asked = std::cell::RefCell::new(Vec::new());
        let portal = |address: &str| -> Result<bool, String> {
            asked.borrow_mut().push(address.to_owned());
            Ok(false)
        };
        let SystemDialog::Unavailable(why) = detect_with(&bus, &portal) else { panic!("no portal: unavailable") };
        assert!(why.contains("org.freedesktop.portal.FileChooser"), "{why}");
        assert_eq!(asked.borrow().as_slice(), ["unix:path=/run/user/1000/bus"]);
        assert_eq!(detect_with(&bus, &|_| Ok(true)), SystemDialog::Available);

        // The user's bus socket stands in for an unset address, as libdbus does.
        let runtime = tempfile::tempdir().unwrap();
        std::fs::write(runtime.path().join("bus"), "").unwrap();
        let socket_only = env_of(vec![("XDG_RUNTIME_DIR", runtime.path().into())]);
        assert_eq!(detect_with(&socket_only, &|_| Ok(true)), SystemDialog::Available);
    }

    #[test]
    fn a_bus_that_is_not_there_answers_no_at_once() {
        let start = Instant::now();
        match portal_answers("unix:path=/nonexistent/bus", Duration::from_secs(3)) {
            Ok(answers) => assert!(!answers),
            Err(problem) => assert!(problem.contains("dbus-send"), "{problem}"),
        }
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    }
}
