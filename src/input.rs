//! Input hygiene shared by every subcommand (docs/robustness.md): files are read only when they
//! are regular files under a size cap, sizes and counts are multiplied with `checked_mul`, what
//! a run will allocate is planned (and refused over a memory cap) before anything is allocated,
//! and text from the user is escaped before it reaches a terminal.
//!
//! Nothing here panics on any input.
use std::io::Read;
use std::path::Path;

/// Why an input file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The file could not be inspected or read.
    #[error("{}: cannot read: {message}", escape_controls(.path))]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// Not a regular file (a FIFO, a device such as `/dev/zero`, a directory, a socket).
    #[error("{}: not a regular file ({kind}): refused (only regular files are read)", escape_controls(.path))]
    NotRegular {
        /// The file.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// Larger than the cap for its kind.
    #[error("{}: {size} bytes, over the limit of {limit} bytes for {what}", escape_controls(.path))]
    TooLarge {
        /// The file.
        path: String,
        /// Its size (or a lower bound when it grew while being read).
        size: u64,
        /// The cap.
        limit: u64,
        /// What kind of file.
        what: &'static str,
    },
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Opens a file for reading, refusing anything that is not a regular file (checked before
/// opening, so a FIFO never blocks, and again on the open handle) or that is larger than
/// `limit` bytes.
pub fn open_regular(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<std::fs::File, FileError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| FileError::Io {
        path: name.clone(),
        message: e.to_string(),
    };
    let check = |meta: &std::fs::Metadata| -> Result<(), FileError> {
        if !meta.is_file() {
            return Err(FileError::NotRegular {
                path: name.clone(),
                kind: kind_of(meta),
            });
        }
        if meta.len() > limit {
            return Err(FileError::TooLarge {
                path: name.clone(),
                size: meta.len(),
                limit,
                what,
            });
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    let file = std::fs::File::open(path).map_err(io)?;
    check(&file.metadata().map_err(io)?)?;
    Ok(file)
}

/// Reads a whole regular file of at most `limit` bytes ([`open_regular`]); a file that grows
/// while being read is cut at `limit + 1` bytes and refused.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let file = open_regular(path, limit, what)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.display().to_string(),
            size: bytes.len() as u64,
            limit,
            what,
        });
    }
    Ok(bytes)
}

/// `text` with every control character (C0, DEL, C1) and every bidirectional override
/// (U+202A–U+202E, U+2066–U+2069) written as `\u{…}`, so that nothing a user typed into a
/// file can move the cursor, clear the screen or reorder a line of our output. Printable text,
/// including non-ASCII letters, is kept as is.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `c` is a bidirectional formatting character (embedding, override, isolate).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Why a size or count argument (or a product of them) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// An argument outside its documented range.
    #[error("{arg} = {value}: {reason}")]
    OutOfRange {
        /// The argument (`--batch`).
        arg: String,
        /// Its value as given.
        value: String,
        /// The range, and why.
        reason: String,
    },
    /// A product of sizes that does not fit in 64 bits.
    #[error("{what}: {expression} overflows a 64-bit count")]
    Overflow {
        /// What was being sized.
        what: String,
        /// The product, with its factors.
        expression: String,
    },
    /// A run that would allocate more than the memory cap.
    #[error(transparent)]
    OverMemory(Box<OverMemory>),
}

/// A run that would allocate more than the memory cap, with the figures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} would allocate about {} ({detail}), over the memory cap of {} ({cap_source}){hint}",
    human_bytes(*.bytes),
    human_bytes(*.cap)
)]
pub struct OverMemory {
    /// What would run.
    pub what: String,
    /// The bytes it would allocate.
    pub bytes: u64,
    /// The planned allocations.
    pub detail: String,
    /// The cap.
    pub cap: u64,
    /// Where the cap comes from.
    pub cap_source: String,
    /// What to change (starts with `; ` when present).
    pub hint: String,
}

/// Bytes as `1.50 GiB`, `12.0 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// The memory cap of one run, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryCap {
    /// Bytes.
    pub bytes: u64,
    /// `RTB_MAX_MEMORY`, half of `MemTotal`, or the fallback.
    pub source: String,
}

/// Environment variable overriding the memory cap (bytes, or with a `K`, `M`, `G`, `T` suffix,
/// powers of 1024).
pub const MEMORY_ENV: &str = "RTB_MAX_MEMORY";

/// The cap where neither `RTB_MAX_MEMORY` nor `/proc/meminfo` gives one: 8 GiB.
pub const FALLBACK_MEMORY_CAP: u64 = 8 << 30;

/// Parses `1500M`, `2G`, `123456` (bytes).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 10),
        (i, 'M' | 'm') => (&t[..i], 20),
        (i, 'G' | 'g') => (&t[..i], 30),
        (i, 'T' | 't') => (&t[..i], 40),
        _ => (t, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// The memory cap: `RTB_MAX_MEMORY` when set (an unparsable value falls back, with the value
/// named in the source), else half of the machine's `MemTotal`, else
/// [`FALLBACK_MEMORY_CAP`].
pub fn memory_cap() -> MemoryCap {
    if let Ok(text) = std::env::var(MEMORY_ENV) {
        if let Some(bytes) = parse_bytes(&text) {
            return MemoryCap {
                bytes,
                source: format!("{MEMORY_ENV}={}", escape_controls(&text)),
            };
        }
    }
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kb.checked_mul(1024)
    });
    match total {
        Some(bytes) => MemoryCap {
            bytes: bytes / 2,
            source: format!("half of MemTotal; set {MEMORY_ENV} to change it"),
        },
        None => MemoryCap {
            bytes: FALLBACK_MEMORY_CAP,
            source: format!("default; set {MEMORY_ENV} to change it"),
        },
    }
}

/// `factors` multiplied with `checked_mul`, naming the product on overflow.
pub fn product(what: &str, factors: &[(&str, u64)]) -> Result<u64, LimitError> {
    factors
        .iter()
        .try_fold(1u64, |acc, &(_, f)| acc.checked_mul(f))
        .ok_or_else(|| LimitError::Overflow {
            what: what.to_string(),
            expression: factors
                .iter()
                .map(|(n, v)| format!("{n} = {v}"))
                .collect::<Vec<_>>()
                .join(" × "),
        })
}

/// An argument checked against `1..=max`.
pub fn in_range(arg: &str, value: u64, min: u64, max: u64, why: &str) -> Result<u64, LimitError> {
    if value < min || value > max {
        let range = if max == u64::MAX {
            format!("at least {min}")
        } else {
            format!("in {min}..={max}")
        };
        return Err(LimitError::OutOfRange {
            arg: arg.to_string(),
            value: value.to_string(),
            reason: format!("must be {range} ({why})"),
        });
    }
    Ok(value)
}

/// What a run will allocate, item by item, every product checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    what: String,
    items: Vec<(String, u64)>,
    total: u64,
}

impl Plan {
    /// An empty plan for `what` (`gradcheck`, `bench`, …).
    pub fn new(what: &str) -> Self {
        Self {
            what: what.to_string(),
            items: Vec::new(),
            total: 0,
        }
    }

    /// Adds `count × bytes_each` bytes under `label`.
    pub fn add(
        &mut self,
        label: &str,
        count: u64,
        bytes_each: u64,
    ) -> Result<&mut Self, LimitError> {
        let bytes = product(
            &format!("{}: {label}", self.what),
            &[(label, count), ("bytes each", bytes_each)],
        )?;
        self.total = self
            .total
            .checked_add(bytes)
            .ok_or_else(|| LimitError::Overflow {
                what: self.what.clone(),
                expression: "the total of the planned allocations".into(),
            })?;
        self.items.push((label.to_string(), bytes));
        Ok(self)
    }

    /// The total bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// One line: `gradcheck will allocate about 1.20 GiB (log q, log p: 1.00 GiB; …)`.
    pub fn describe(&self) -> String {
        format!(
            "{} will allocate about {} ({})",
            self.what,
            human_bytes(self.total),
            self.detail()
        )
    }

    fn detail(&self) -> String {
        self.items
            .iter()
            .map(|(l, b)| format!("{l}: {}", human_bytes(*b)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Refuses the plan when over `cap`; `hint` says what to lower.
    pub fn check(&self, cap: &MemoryCap, hint: &str) -> Result<(), LimitError> {
        if self.total > cap.bytes {
            return Err(LimitError::OverMemory(Box::new(OverMemory {
                what: self.what.clone(),
                bytes: self.total,
                detail: self.detail(),
                cap: cap.bytes,
                cap_source: cap.source.clone(),
                hint: if hint.is_empty() {
                    String::new()
                } else {
                    format!("; {hint}")
                },
            })));
        }
        Ok(())
    }

    /// Checks the plan against the process's cap ([`memory_cap`]) and, when it is large
    /// (≥ [`ANNOUNCE_BYTES`]), says on standard error what the run will allocate, before it
    /// allocates anything.
    pub fn check_and_announce(&self, hint: &str) -> Result<(), LimitError> {
        self.check(&memory_cap(), hint)?;
        if self.total >= ANNOUNCE_BYTES {
            eprintln!("{}", self.describe());
        }
        Ok(())
    }
}

/// Plans at least this large are announced on standard error: 256 MiB.
pub const ANNOUNCE_BYTES: u64 = 256 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_overflow_by_name() {
        let e = product("batch", &[("B", u64::MAX), ("T", 2)]).unwrap_err();
        assert!(
            e.to_string().contains("B = 18446744073709551615 × T = 2"),
            "{e}"
        );
        assert_eq!(product("x", &[("a", 3), ("b", 5)]), Ok(15));
    }

    #[test]
    fn plans_over_the_cap_are_refused_with_the_figures() {
        let cap = MemoryCap {
            bytes: 1 << 30,
            source: "test".into(),
        };
        let mut plan = Plan::new("run");
        plan.add("log q", 1 << 28, 4).unwrap();
        assert!(plan.check(&cap, "").is_ok());
        plan.add("log p", 1, 1).unwrap();
        let e = plan.check(&cap, "lower --batch").unwrap_err().to_string();
        assert!(e.contains("1.00 GiB") && e.contains("lower --batch"), "{e}");
        assert!(Plan::new("x").add("a", u64::MAX, 2).is_err());
    }

    #[test]
    fn bytes_parse_with_suffixes() {
        assert_eq!(parse_bytes("1500M"), Some(1500 << 20));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("77"), Some(77));
        for bad in ["", "G", "-1", "1.5G", "99999999999999999999T"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_controls("x\u{202e}y\n"), "x\\u{202e}y\\u{a}");
        assert_eq!(escape_controls("état"), "état");
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let e = read_bounded(Path::new("/dev/zero"), 1 << 20, "a spec").unwrap_err();
        assert!(matches!(e, FileError::NotRegular { .. }), "{e}");
        let e = read_bounded(Path::new("/"), 1 << 20, "a spec").unwrap_err();
        assert!(matches!(e, FileError::NotRegular { .. }), "{e}");
        let dir = std::env::temp_dir().join(format!("rtb-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'#'; 2048]).unwrap();
        let e = read_bounded(&big, 1024, "a spec").unwrap_err();
        assert!(matches!(e, FileError::TooLarge { size: 2048, .. }), "{e}");
        assert_eq!(read_bounded(&big, 4096, "a spec").unwrap().len(), 2048);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
