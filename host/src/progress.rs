//! Progress for the CLI's slow steps: compiling a component (up to 20 s for Python and JavaScript), a language
//! toolchain's build (componentize-py, componentize-js, zig), a toolchain's first install, a download or pull.
//!
//! On a terminal a step is a spinner (or, for a transfer of known size, a bar with bytes and rate) that is cleared
//! when it ends; off a terminal it is a plain line when it starts. Either way the end is a line of its own, so
//! nothing that follows (an approval prompt, a call report) runs into it. A child process run under a step has its
//! output printed line by line above the spinner instead of being drawn over by it.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::units::{human_bytes, human_duration};

fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// One step under way.
#[derive(Debug)]
pub struct Step {
    what: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Step {
    /// Starts showing `what` ("compiling x.wasm (17.6 MiB)").
    pub fn start(what: impl Into<String>) -> Step {
        let what = what.into();
        let bar = on_terminal().then(|| {
            let bar = ProgressBar::new_spinner().with_message(what.clone());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            eprintln!("{what}…");
        }
        Step {
            what,
            bar,
            started: Instant::now(),
        }
    }

    /// Prints a line of its own (above the spinner on a terminal).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Runs `cmd` to its end with its stdout and stderr printed line by line through [`Step::println`]; returns its
    /// exit status. Lines are cut at 4 KiB each, so a child that never ends a line cannot grow memory.
    pub fn run(&self, cmd: &mut Command) -> std::io::Result<ExitStatus> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|pipe| {
            let tx = tx.clone();
            std::thread::spawn(move || forward_lines(pipe, &tx))
        })
        .collect();
        drop(tx);
        for line in rx {
            self.println(&line);
        }
        for r in readers {
            let _ = r.join();
        }
        child.wait()
    }

    /// Ends the step with a line saying how long it took.
    pub fn done(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: done in {}",
            self.what,
            human_duration(self.started.elapsed())
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        // A step that failed (dropped without `done`) leaves no spinner behind the error that follows.
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}

/// Sends `pipe`'s lines (each cut at 4 KiB, lossily decoded) until it ends or the receiver is gone.
fn forward_lines(pipe: Box<dyn Read + Send>, tx: &std::sync::mpsc::Sender<String>) {
    const MAX_LINE: u64 = 4096;
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                if tx.send(line.to_string()).is_err() {
                    return;
                }
            }
        }
    }
}

/// A step that starts only if something calls [`OnDemand::starter`]'s closure (e.g. `Host::compile`'s
/// `on_compile`, which runs only on a cache miss).
#[derive(Debug, Default)]
pub struct OnDemand(RefCell<Option<Step>>);

impl OnDemand {
    /// The closure that starts the step.
    pub fn starter(&self, what: String) -> impl FnOnce() + '_ {
        move || *self.0.borrow_mut() = Some(Step::start(what))
    }

    /// Ends the step if it started.
    pub fn finish(self) {
        if let Some(step) = self.0.into_inner() {
            step.done();
        }
    }
}

/// A transfer of bytes (a download, a pull). On a terminal a bar with bytes, rate and time left when the size is
/// known (a spinner with the bytes so far when not); off a terminal a plain line when it starts and one when it
/// ends. Small transfers (under 1 MiB) show nothing: they end before anyone could read a bar.
#[derive(Debug)]
pub struct Transfer {
    what: String,
    bar: Option<ProgressBar>,
    plain: bool,
    started: Instant,
}

impl Transfer {
    /// Below this a transfer shows nothing.
    pub const QUIET_BELOW: u64 = 1 << 20;

    /// Starts showing `what` ("pulling acme/hello:1.0 component"); `total` is the size when known. `enabled` false
    /// shows nothing at all (a library caller that did not ask for progress).
    pub fn start(what: impl Into<String>, total: Option<u64>, enabled: bool) -> Transfer {
        let what = what.into();
        let shown = enabled && total.is_none_or(|n| n >= Self::QUIET_BELOW);
        let bar = (shown && on_terminal()).then(|| {
            let (bar, template) = match total {
                Some(n) => (
                    ProgressBar::new(n),
                    "{msg} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{spinner} {msg} {bytes} {elapsed}",
                ),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let plain = shown && bar.is_none();
        if plain {
            match total {
                Some(n) => eprintln!("{what} ({})…", human_bytes(n)),
                None => eprintln!("{what}…"),
            }
        }
        Transfer {
            what,
            bar,
            plain,
            started: Instant::now(),
        }
    }

    /// Sets how many bytes have arrived (after a resume this may go back).
    pub fn set(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
        }
    }

    /// Ends the transfer: `bytes` arrived.
    pub fn done(self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.bar.is_some() || self.plain {
            eprintln!(
                "{}: {} in {}",
                self.what,
                human_bytes(bytes),
                human_duration(self.started.elapsed())
            );
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        // A transfer that failed part-way leaves no half-drawn bar behind the error that follows.
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}
