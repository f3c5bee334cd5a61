//! Spec files (TOML, exact rationals as strings) and their validation.
//!
//! Every refusal is a [`SpecError`] naming the file, the field (an edge as `from->to`, a state
//! by name, or a key) and the offending value. Nothing here panics on any input.
use super::env::{Edge, Environment};
use crate::exact::{parse_rational, quote, Rational};
use crate::input::{escape_controls, is_bidi_control, read_bounded};
use num_traits::{One, Signed, Zero};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// A refused spec: which file, which field, what is wrong. Displayed with every control
/// character and bidirectional override escaped ([`escape_controls`]), so that nothing from
/// the file reaches a terminal raw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}: {}", escape_controls(.file), escape_controls(.field), escape_controls(.message))]
pub struct SpecError {
    /// The file (or label) of the spec.
    pub file: String,
    /// The field: `beta`, `edge s0->a: prior`, `state a`, `rewards.x1`, ...
    pub field: String,
    /// What is wrong, quoting the offending value.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    beta: toml::Value,
    source: String,
    #[serde(default)]
    rewards: BTreeMap<String, toml::Value>,
    #[serde(default)]
    edge: Vec<RawEdge>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    from: Option<String>,
    to: Option<String>,
    prior: Option<toml::Value>,
    posterior: Option<toml::Value>,
}

/// An edge of a spec before validation, with exact values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeData {
    /// Source state name.
    pub from: String,
    /// Target state name.
    pub to: String,
    /// Prior probability.
    pub prior: Rational,
    /// Posterior probability, if given.
    pub posterior: Option<Rational>,
}

/// A spec before validation, with exact values (what the TOML says, or what a generator made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecData {
    /// Name.
    pub name: String,
    /// β.
    pub beta: Rational,
    /// Source state name.
    pub source: String,
    /// Rewards by state name, in file order.
    pub rewards: Vec<(String, Rational)>,
    /// Edges in file order.
    pub edges: Vec<EdgeData>,
}

struct Refuse<'a> {
    file: &'a str,
}

impl Refuse<'_> {
    fn at(&self, field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

fn rational_field(
    value: &toml::Value,
    field: &str,
    refuse: &Refuse,
) -> Result<Rational, SpecError> {
    match value {
        toml::Value::String(text) => {
            parse_rational(text).map_err(|m| refuse.at(field, m.to_string()))
        }
        toml::Value::Float(x) => Err(refuse.at(
            field,
            format!("`{x}` is a float, which is not exact: write the rational as a string, e.g. \"1/3\""),
        )),
        toml::Value::Integer(i) => Err(refuse.at(
            field,
            format!("`{i}` is a bare number: write exact rationals as strings, e.g. \"{i}\""),
        )),
        other => Err(refuse.at(
            field,
            format!(
                "a {} is not a rational (expected a string such as \"3/2\")",
                other.type_str()
            ),
        )),
    }
}

/// Parses a spec from TOML text; `file` labels the errors.
pub fn parse_spec(text: &str, file: &str) -> Result<SpecData, SpecError> {
    let refuse = Refuse { file };
    let raw: RawSpec = toml::from_str(text).map_err(|e| toml_error(&e, text, &refuse))?;
    let beta = rational_field(&raw.beta, "beta", &refuse)?;
    let mut rewards = Vec::new();
    for (state, value) in &raw.rewards {
        let field = format!("rewards.{state}");
        rewards.push((state.clone(), rational_field(value, &field, &refuse)?));
    }
    let mut edges = Vec::new();
    for (index, edge) in raw.edge.iter().enumerate() {
        // Name the edge as well as the spec allows, to say which one lacks a key.
        let end = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        let name = format!("{}->{}", end(&edge.from), end(&edge.to));
        let (Some(from), Some(to)) = (&edge.from, &edge.to) else {
            let key = if edge.from.is_none() { "from" } else { "to" };
            return Err(refuse.at(
                format!("edge #{} {name}: {key}", index + 1),
                format!("missing field `{key}`"),
            ));
        };
        let Some(prior) = &edge.prior else {
            return Err(refuse.at(format!("edge {name}: prior"), "missing field `prior`"));
        };
        let prior = rational_field(prior, &format!("edge {name}: prior"), &refuse)?;
        let posterior = edge
            .posterior
            .as_ref()
            .map(|v| rational_field(v, &format!("edge {name}: posterior"), &refuse))
            .transpose()?;
        edges.push(EdgeData {
            from: from.clone(),
            to: to.clone(),
            prior,
            posterior,
        });
    }
    Ok(SpecData {
        name: raw.name,
        beta,
        source: raw.source,
        rewards,
        edges,
    })
}

/// A TOML error as a [`SpecError`] that always has a message: the line (and column) of the
/// error, the parser's message, and, where the parser gives none (a control character in a
/// comment, for one), the offending character.
fn toml_error(e: &toml::de::Error, text: &str, refuse: &Refuse) -> SpecError {
    let span = e.span();
    let field = match &span {
        Some(span) => {
            let start = floor_char_boundary(text, span.start);
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}")
        }
        None => "spec".to_string(),
    };
    let mut message = e.message().trim().to_string();
    if message.is_empty() {
        let at = span
            .as_ref()
            .and_then(|s| text[floor_char_boundary(text, s.start)..].chars().next());
        message = match at {
            Some(c) if c.is_control() => format!(
                "invalid TOML: control character U+{:04X} is not allowed here (not even in a comment)",
                c as u32
            ),
            Some(c) => format!("invalid TOML at {}", quote(&c.to_string())),
            None => "invalid TOML (unexpected end of file)".to_string(),
        };
    }
    refuse.at(field, message)
}

/// The largest char boundary of `text` at or below `i`.
fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Longest name accepted (spec name, state name): 256 bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Refuses a name that is empty, too long, or holds a control character or a bidirectional
/// override (which could rewrite the terminal when the name is printed).
fn check_name(name: &str, field: &str, refuse: &Refuse) -> Result<(), SpecError> {
    if name.trim().is_empty() {
        return Err(refuse.at(field, "the name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(refuse.at(
            field,
            format!(
                "name {} is {} bytes long, over the limit of {MAX_NAME_BYTES}",
                quote(name),
                name.len()
            ),
        ));
    }
    if let Some(c) = name.chars().find(|&c| c.is_control() || is_bidi_control(c)) {
        return Err(refuse.at(
            field,
            format!(
                "name {} holds the control character U+{:04X}: names must be printable",
                quote(name),
                c as u32
            ),
        ));
    }
    Ok(())
}

fn sum<'a>(values: impl Iterator<Item = &'a Rational>) -> Rational {
    values.fold(Rational::zero(), |acc, v| acc + v)
}

/// Validates a spec into an [`Environment`]; `file` labels the errors.
pub fn validate(spec: &SpecData, file: &str) -> Result<Environment, SpecError> {
    let refuse = Refuse { file };
    check_name(&spec.name, "name", &refuse)?;
    if !spec.beta.is_positive() {
        return Err(refuse.at("beta", format!("β = `{}` must be positive", spec.beta)));
    }
    if spec.source.trim().is_empty() {
        return Err(refuse.at("source", "the source name is empty"));
    }
    check_name(&spec.source, "source", &refuse)?;
    if spec.edges.is_empty() {
        return Err(refuse.at("edge", "there are no edges: the source must have children"));
    }

    // States in order of first appearance, the source first.
    let mut states = vec![spec.source.clone()];
    let mut state_index: HashMap<String, usize> = HashMap::from([(spec.source.clone(), 0)]);
    let mut seen_edges = HashSet::new();
    let mut edges = Vec::new();
    for data in &spec.edges {
        let name = format!("{}->{}", data.from, data.to);
        for (role, state) in [("from", &data.from), ("to", &data.to)] {
            if state.trim().is_empty() {
                return Err(refuse.at(format!("edge {name}: {role}"), "empty state name"));
            }
            check_name(state, &format!("edge {name}: {role}"), &refuse)?;
        }
        if data.from == data.to {
            return Err(refuse.at(
                format!("edge {name}"),
                format!("self-loop on `{}` is a cycle", data.from),
            ));
        }
        if !seen_edges.insert((data.from.clone(), data.to.clone())) {
            return Err(refuse.at(format!("edge {name}"), "duplicate edge"));
        }
        if !data.prior.is_positive() || data.prior > Rational::one() {
            return Err(refuse.at(
                format!("edge {name}: prior"),
                format!("prior `{}` must be in (0, 1]", data.prior),
            ));
        }
        if let Some(q) = &data.posterior {
            if !q.is_positive() || *q > Rational::one() {
                return Err(refuse.at(
                    format!("edge {name}: posterior"),
                    format!("posterior `{q}` must be in (0, 1]"),
                ));
            }
        }
        let mut index_of = |state: &String| {
            let next = states.len();
            *state_index.entry(state.clone()).or_insert_with(|| {
                states.push(state.clone());
                next
            })
        };
        let (from, to) = (index_of(&data.from), index_of(&data.to));
        edges.push(Edge {
            from,
            to,
            prior: data.prior.clone(),
            posterior: data.posterior.clone().unwrap_or_default(),
            posterior_given: data.posterior.is_some(),
        });
    }
    let n = states.len();
    let mut out_edges = vec![Vec::new(); n];
    let mut in_edges = vec![Vec::new(); n];
    for (e, edge) in edges.iter().enumerate() {
        out_edges[edge.from].push(e);
        in_edges[edge.to].push(e);
    }
    if out_edges[0].is_empty() && in_edges[0].is_empty() {
        return Err(refuse.at(
            "source",
            format!("source `{}` is not a state of any edge", spec.source),
        ));
    }
    if let Some(&e) = in_edges[0].first() {
        return Err(refuse.at(
            format!("edge {}->{}", states[edges[e].from], states[edges[e].to]),
            format!("an edge enters the source `{}`", spec.source),
        ));
    }

    // Rewards: on known sinks only, positive, and on every sink.
    let mut rewards: Vec<Option<Rational>> = vec![None; n];
    for (state, r) in &spec.rewards {
        let field = format!("rewards.{state}");
        check_name(state, &field, &refuse)?;
        let Some(&s) = state_index.get(state) else {
            return Err(refuse.at(field, format!("`{state}` is not a state of any edge")));
        };
        if !out_edges[s].is_empty() {
            return Err(refuse.at(
                field,
                format!("`{state}` has children: rewards go on terminals (sinks) only"),
            ));
        }
        if !r.is_positive() {
            return Err(refuse.at(field, format!("reward `{r}` must be positive")));
        }
        rewards[s] = Some(r.clone());
    }
    for s in 0..n {
        if out_edges[s].is_empty() && rewards[s].is_none() {
            return Err(refuse.at(
                format!("state {}", states[s]),
                format!("terminal `{}` has no reward in [rewards]", states[s]),
            ));
        }
    }

    // Reachability from the source, and co-reachability of a terminal.
    let reach = |start: Vec<usize>, next: &dyn Fn(usize) -> Vec<usize>| {
        let mut seen = vec![false; n];
        let mut queue: VecDeque<usize> = start.into();
        for &s in &queue {
            seen[s] = true;
        }
        while let Some(s) = queue.pop_front() {
            for t in next(s) {
                if !seen[t] {
                    seen[t] = true;
                    queue.push_back(t);
                }
            }
        }
        seen
    };
    let forward = reach(vec![0], &|s| {
        out_edges[s].iter().map(|&e| edges[e].to).collect()
    });
    if let Some(s) = (0..n).find(|&s| !forward[s]) {
        return Err(refuse.at(
            format!("state {}", states[s]),
            format!(
                "`{}` is unreachable from the source `{}`",
                states[s], spec.source
            ),
        ));
    }
    let sinks = (0..n).filter(|&s| out_edges[s].is_empty()).collect();
    let backward = reach(sinks, &|s| {
        in_edges[s].iter().map(|&e| edges[e].from).collect()
    });
    if let Some(s) = (0..n).find(|&s| !backward[s]) {
        return Err(refuse.at(
            format!("state {}", states[s]),
            format!("no terminal is reachable from `{}`", states[s]),
        ));
    }

    // Cycles: Kahn's algorithm; a leftover edge lies on or after a cycle.
    let mut indegree: Vec<usize> = in_edges.iter().map(Vec::len).collect();
    let mut topo = Vec::with_capacity(n);
    let mut ready: VecDeque<usize> = (0..n).filter(|&s| indegree[s] == 0).collect();
    while let Some(s) = ready.pop_front() {
        topo.push(s);
        for &e in &out_edges[s] {
            let t = edges[e].to;
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.push_back(t);
            }
        }
    }
    if topo.len() < n {
        // Walk backwards along unprocessed states until one repeats: that closes a cycle.
        let mut on_cycle = (0..n).find(|&s| indegree[s] > 0).unwrap_or(0);
        let mut visited = HashSet::new();
        while visited.insert(on_cycle) {
            on_cycle = in_edges[on_cycle]
                .iter()
                .map(|&e| edges[e].from)
                .find(|&f| indegree[f] > 0)
                .unwrap_or(on_cycle);
        }
        let e = in_edges[on_cycle]
            .iter()
            .copied()
            .find(|&e| indegree[edges[e].from] > 0)
            .unwrap_or(in_edges[on_cycle][0]);
        return Err(refuse.at(
            format!("edge {}->{}", states[edges[e].from], states[edges[e].to]),
            format!("the graph has a cycle through `{}`", states[on_cycle]),
        ));
    }

    // Priors and posteriors sum to exactly one; posteriors all or none per state.
    for s in 0..n {
        let out = &out_edges[s];
        if out.is_empty() {
            continue;
        }
        let list = |value: &dyn Fn(&Edge) -> String| {
            out.iter()
                .map(|&e| format!("{} = {}", states[edges[e].to], value(&edges[e])))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let prior_mass = sum(out.iter().map(|&e| &edges[e].prior));
        if !prior_mass.is_one() {
            return Err(refuse.at(
                format!("state {}", states[s]),
                format!(
                    "priors out of `{}` sum to {prior_mass}, not 1 ({})",
                    states[s],
                    list(&|e| e.prior.to_string())
                ),
            ));
        }
        let given = out.iter().filter(|&&e| edges[e].posterior_given).count();
        if given > 0 && given < out.len() {
            let missing = out
                .iter()
                .find(|&&e| !edges[e].posterior_given)
                .copied()
                .unwrap_or(out[0]);
            return Err(refuse.at(
                format!(
                    "edge {}->{}: posterior",
                    states[s], states[edges[missing].to]
                ),
                format!(
                    "state `{}` gives a posterior on {given} of its {} edges: give all or none",
                    states[s],
                    out.len()
                ),
            ));
        }
        if given == 0 {
            let uniform = Rational::new(1.into(), (out.len() as i64).into());
            for &e in out {
                edges[e].posterior = uniform.clone();
            }
        } else {
            let mass = sum(out.iter().map(|&e| &edges[e].posterior));
            if !mass.is_one() {
                return Err(refuse.at(
                    format!("state {}", states[s]),
                    format!(
                        "posteriors out of `{}` sum to {mass}, not 1 ({})",
                        states[s],
                        list(&|e| e.posterior.to_string())
                    ),
                ));
            }
        }
    }

    Ok(Environment {
        file: file.to_string(),
        name: spec.name.clone(),
        beta: spec.beta.clone(),
        states,
        state_index,
        source: 0,
        edges,
        out_edges,
        in_edges,
        topo,
        rewards,
    })
}

/// Largest spec file read: 32 MiB (about 400,000 edges; the exact engine's own budget bounds
/// the work on what is read).
pub const MAX_SPEC_BYTES: u64 = 32 << 20;

/// Reads, parses and validates one spec file: a regular file (a FIFO or a device is refused
/// before it is opened) of at most [`MAX_SPEC_BYTES`], in UTF-8.
pub fn load_file(path: &Path) -> Result<Environment, SpecError> {
    let file = path.display().to_string();
    let bytes = read_bounded(path, MAX_SPEC_BYTES, "a spec file").map_err(|e| SpecError {
        file: file.clone(),
        field: "file".into(),
        message: match &e {
            crate::input::FileError::Io { message, .. } => format!("cannot read: {message}"),
            crate::input::FileError::NotRegular { kind, .. } => {
                format!("not a regular file ({kind}): refused")
            }
            crate::input::FileError::TooLarge { size, limit, .. } => {
                format!("{size} bytes, over the limit of {limit} bytes for a spec file")
            }
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| SpecError {
        file: file.clone(),
        field: format!("byte {}", e.utf8_error().valid_up_to()),
        message: "the file is not valid UTF-8".into(),
    })?;
    let spec = parse_spec(&text, &file)?;
    validate(&spec, &file)
}

/// The `*.toml` files of a directory, sorted, or the path itself when it is a file.
pub fn spec_paths(path: &Path) -> Result<Vec<PathBuf>, SpecError> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| SpecError {
            file: path.display().to_string(),
            field: "directory".into(),
            message: format!("cannot read: {e}"),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        Ok(files)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(SpecError {
            file: path.display().to_string(),
            field: "path".into(),
            message: "no such file or directory".into(),
        })
    }
}

/// Loads every spec under the given paths (files, or directories of `*.toml`), refusing
/// duplicate names across them.
pub fn load_dir(paths: &[PathBuf]) -> Result<Vec<Environment>, SpecError> {
    let mut envs: Vec<Environment> = Vec::new();
    for path in paths {
        for file in spec_paths(path)? {
            let env = load_file(&file)?;
            if let Some(other) = envs.iter().find(|e| e.name == env.name) {
                return Err(SpecError {
                    file: env.file.clone(),
                    field: "name".into(),
                    message: format!("name `{}` is already used by {}", env.name, other.file),
                });
            }
            envs.push(env);
        }
    }
    Ok(envs)
}

/// Parses and validates a spec from text (for tests and generated specs).
pub fn from_toml_str(text: &str, file: &str) -> Result<Environment, SpecError> {
    validate(&parse_spec(text, file)?, file)
}
