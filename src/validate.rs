//! `reconfig --check`: every resource rendered once against the live data, with nothing
//! written and no command run, for a config repository's CI or before a deploy.

use std::collections::BTreeMap;
use std::fmt;

use crate::etcd::{self, Client, Freshness};
use crate::keys;
use crate::resource::Resource;
use crate::template::{Context, TemplateError};

/// Why a valid resource file does not render against the live data.
#[derive(Debug)]
pub enum RenderProblem {
    /// etcd could not be read.
    Etcd(etcd::Error),
    /// The watched key does not exist: the daemon would leave the target alone.
    Missing {
        key: String,
    },
    Template(TemplateError),
}

impl fmt::Display for RenderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderProblem::Etcd(e) => write!(f, "etcd: {e}"),
            RenderProblem::Missing { key } => write!(
                f,
                "watched key {key} does not exist in etcd, so it cannot render; create it or fix \"key\""
            ),
            RenderProblem::Template(e) => e.fmt(f),
        }
    }
}

/// What rendering one resource gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: usize,
    /// The etcd index of the data it rendered.
    pub index: u64,
}

/// Renders `resource` from a fresh read of its key and altkeys; writes nothing, runs
/// nothing. A missing altkey renders as empty, as in the daemon.
pub fn render(resource: &Resource, client: &Client) -> Result<Rendered, RenderProblem> {
    let mut reader = keys::PassReader::direct(client, resource.reads());
    let snapshot = keys::read_all(resource.keys.iter().map(String::as_str), |key| {
        reader.read(key, resource.recursive, Freshness::now())
    })
    .map_err(RenderProblem::Etcd)?;
    let Some(data) = snapshot.data else {
        return Err(RenderProblem::Missing {
            key: resource.keys.join(", "),
        });
    };
    let mut altdata = BTreeMap::new();
    for (alias, key) in &resource.altkeys {
        let (alt, _) = reader
            .read(key, true, Freshness::now())
            .map_err(RenderProblem::Etcd)?;
        altdata.insert(alias.clone(), alt.unwrap_or_default());
    }
    let context = Context {
        data: &data,
        altdata: &altdata,
        watched: &resource.key,
    };
    let text = resource
        .template
        .render(&context)
        .map_err(RenderProblem::Template)?;
    Ok(Rendered {
        bytes: text.len(),
        index: snapshot.index,
    })
}
