//! A progress bar for the library's long runs (gradcheck's batch generation, the study): the
//! `indicatif` bar with the `cli` feature, nothing without it, so a user who depends on the
//! library alone does not pull in a terminal crate.

/// A progress bar on stderr, or a hidden one.
#[derive(Debug, Clone)]
pub struct Progress {
    #[cfg(feature = "cli")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A bar that draws nothing.
    pub fn hidden() -> Self {
        Self {
            #[cfg(feature = "cli")]
            bar: indicatif::ProgressBar::hidden(),
        }
    }

    /// A bar of `len` steps on stderr (drawn only when stderr is a terminal), labelled with
    /// `label` and the position, the elapsed time and the estimate of the time left. Without
    /// the `cli` feature it is [`Progress::hidden`].
    pub fn stderr(label: &str, len: u64) -> Self {
        #[cfg(feature = "cli")]
        {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(len),
                indicatif::ProgressDrawTarget::stderr(),
            );
            let template = format!(
                "{label} {{bar:40}} {{pos}}/{{len}} ({{elapsed}} elapsed, eta {{eta}}) {{msg}}"
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Self { bar }
        }
        #[cfg(not(feature = "cli"))]
        {
            let _ = (label, len);
            Self::hidden()
        }
    }

    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        #[cfg(feature = "cli")]
        self.bar.inc(n);
        #[cfg(not(feature = "cli"))]
        let _ = n;
    }

    /// Sets the text shown after the bar.
    pub fn set_message(&self, message: String) {
        #[cfg(feature = "cli")]
        self.bar.set_message(message);
        #[cfg(not(feature = "cli"))]
        let _ = message;
    }

    /// Removes the bar from the terminal.
    pub fn finish_and_clear(&self) {
        #[cfg(feature = "cli")]
        self.bar.finish_and_clear();
    }
}
