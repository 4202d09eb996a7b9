//! Progress for the CLI's slow steps (compiling a component: up to 20 s for Python and JavaScript). On a terminal, a
//! spinner with the elapsed time that is cleared when the step ends; off a terminal, a plain line when it starts.
//! Either way the end is a line of its own, so nothing that follows (an approval prompt, a call report) runs into it.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

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
        let bar = std::io::stderr().is_terminal().then(|| {
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

    /// Ends the step with a line saying how long it took.
    pub fn done(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: done in {}",
            self.what,
            plughost::units::human_duration(self.started.elapsed())
        );
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
