//! The parts of the man pages that are not flags: environment, files, examples, and the
//! whole of `reconfig.d(5)` (the conf.d format and the template context, as README.md
//! describes them). The flags come from the flag table (`flags`); tests/packaging.rs checks
//! that every field reconfig knows is described in `reconfig.d(5)`.

use super::man::{Block, Page, Section};

const ENVIRONMENT_CONNECTION: &[Block] = &[
    Block::Item(
        "RECONFIG_API",
        "The etcd API when --api is not given: v2, v3, auto (or 2, 3).",
    ),
    Block::Item(
        "ETCDCTL_API",
        "etcdctl's convention (2 or 3), used when neither --api nor RECONFIG_API is set.",
    ),
    Block::Item(
        "RECONFIG_DNS_SERVER",
        "The DNS server (ip or ip:port) for --srv and --srv-domain queries, instead of the \
         nameservers of /etc/resolv.conf.",
    ),
];

/// reconfig(1) after EXIT STATUS.
pub const RECONFIG_EXTRA: &[Section] = &[
    Section {
        heading: "ENVIRONMENT",
        blocks: ENVIRONMENT_CONNECTION,
    },
    Section {
        heading: "FILES",
        blocks: &[
            Block::Item(
                "/etc/reconfig/conf.d/*.json",
                "The resources: one etcd key, one template, one target file each; see \
                 reconfig.d(5).",
            ),
            Block::Item("/etc/reconfig/templates/", "The templates the resources name."),
            Block::Item(
                "/etc/default/reconfig",
                "RECONFIG_OPTS, the daemon's flags, read by the systemd unit and the runit \
                 service of the examples.",
            ),
            Block::Item(
                "/etc/resolv.conf, /etc/hosts",
                "Where SRV records and endpoint host names are resolved (the static binary \
                 uses no NSS modules).",
            ),
        ],
    },
    Section {
        heading: "EXAMPLES",
        blocks: &[
            Block::Para("Converge every resource once, as cron would:"),
            Block::Example("reconfig --onetime --endpoints http://127.0.0.1:2379"),
            Block::Para("Show what would change, changing nothing (exit 4 on drift):"),
            Block::Example("reconfig --onetime --notreally"),
            Block::Para("Run as a daemon against a TLS cluster found by DNS SRV:"),
            Block::Example(
                "reconfig --srv-domain example.com -s --ssl_cafile /etc/reconfig/tls/ca.pem \\\n    \
                 --ssl_cert /etc/reconfig/tls/client.pem --ssl_key /etc/reconfig/tls/client.key",
            ),
        ],
    },
    Section {
        heading: "SEE ALSO",
        blocks: &[Block::Para(
            "etcd-util(1), reconfig.d(5), etcd(1). Service definitions for systemd, runit, \
             supervisord and cron are in the examples directory \
             (/usr/share/doc/reconfig/contrib/ when installed from a package).",
        )],
    },
];

/// etcd-util(1) after EXIT STATUS.
pub const ETCD_UTIL_EXTRA: &[Section] = &[
    Section {
        heading: "ENVIRONMENT",
        blocks: ENVIRONMENT_CONNECTION,
    },
    Section {
        heading: "EXAMPLES",
        blocks: &[
            Block::Example(
                "etcd-util -k /abc/test2\n\
                 etcd-util -k / -r\n\
                 etcd-util -o set -k /abc/x -v hello -t 30\n\
                 etcd-util -o del -k /abc -r\n\
                 etcd-util -o watch -k /abc -r\n\
                 etcd-util -o migrate -k /app --dry-run",
            ),
            Block::Para(
                "A GET prints pretty JSON: {\"/abc/test2\": \"hello\"} for a leaf, the array \
                 of the children's keys for a directory, and with -r one object of every \
                 leaf's key and value. SET and DEL report on stderr.",
            ),
        ],
    },
    Section {
        heading: "SEE ALSO",
        blocks: &[Block::Para("reconfig(1), reconfig.d(5), etcdctl(1).")],
    },
];

/// reconfig.d(5): the conf.d format and the template context.
pub const RECONFIG_D: Page = Page {
    name: "reconfig.d",
    number: 5,
    summary: "resource files and templates of reconfig",
    sections: &[
        Section {
            heading: "SYNOPSIS",
            blocks: &[Block::Example(
                "/etc/reconfig/conf.d/*.json\n/etc/reconfig/templates/",
            )],
        },
        Section {
            heading: "DESCRIPTION",
            blocks: &[
                Block::Para(
                    "Each JSON file of the conf.d directory is one resource: it binds one etcd \
                     key and one template to one target file, which reconfig(1) keeps equal to \
                     the template rendered with the key's data. Files are read in sorted name \
                     order. A bad file is reported with its name, field and reason and skipped; \
                     the others run. Unknown fields are warned about. Two resources with the \
                     same target are an error naming both files; the same key may feed several \
                     resources.",
                ),
                Block::Example(
                    "{\n  \"id\": \"haproxy\",\n  \"key\": \"/example/haproxy/backends\",\n  \
                     \"recursive\": true,\n  \"source\": \"haproxy.cfg.tmpl\",\n  \
                     \"target\": \"/etc/haproxy/haproxy.cfg\",\n  \
                     \"checkcmd\": \"haproxy -c -q -f {{src}}\",\n  \
                     \"reloadcmd\": \"systemctl reload haproxy\",\n  \
                     \"wait\": {\"min\": \"200ms\", \"max\": \"2s\"}\n}",
                ),
            ],
        },
        Section {
            heading: "FIELDS",
            blocks: &[
                Block::Item("id", "Name in every log line; default: the file's path."),
                Block::Item(
                    "key",
                    "The etcd key to watch (required, unless keys is given); reconfig's \
                     --prefix is prepended.",
                ),
                Block::Item(
                    "keys",
                    "[\"/a\", \"/b\"]: several keys instead of key (both is an error). Each is \
                     watched (a change under any renders), prefixed and read for every render; \
                     data holds the leaves of all of them, watched is the first. On v3 a \
                     render reads all its keys and altkeys at one revision; v2 cannot, and \
                     reads each after the change that made the render due. min_keys and \
                     max_shrink count the leaves of all.",
                ),
                Block::Item(
                    "recursive",
                    "true: the key is a directory; watch and read everything under it. A \
                     JSON boolean (\"false\" is an error).",
                ),
                Block::Item(
                    "source",
                    "Template file in the templates directory (required).",
                ),
                Block::Item(
                    "target",
                    "Absolute path of the file to keep converged (required). A symlink stays \
                     a link: the file it points to is replaced.",
                ),
                Block::Item(
                    "pattern",
                    "Template delimiters, e.g. \"<% %>\" or \"#% %#\" (see TEMPLATES); \
                     absent: {{ }} and {% %}.",
                ),
                Block::Item(
                    "altkeys",
                    "{\"alias\": \"/other/key\"}: read (recursively, not watched) on every \
                     render, into reconfig.altdata.alias.",
                ),
                Block::Item(
                    "watch_altkeys",
                    "true: watch the altkeys too, so that a change there renders at once \
                     (default false: a change there shows at the next change of key).",
                ),
                Block::Item(
                    "checkcmd",
                    "Validates the new file. With {{src}} it runs on the staged file before \
                     install; without, it runs after install and a failure restores the \
                     previous file. Either way a failure leaves the old config in place and \
                     skips the reload.",
                ),
                Block::Item("reloadcmd", "Run with sh -c after a change is installed."),
                Block::Item(
                    "splay",
                    "Seconds to wait between install and reload (default 0).",
                ),
                Block::Item(
                    "min_reload_interval",
                    "E.g. \"10s\": a reload is started no sooner than this after the previous \
                     one started; one owed sooner is deferred to the end of that window, never \
                     dropped, and covers every file installed meanwhile. Daemon only: \
                     --onetime reloads once per run anyway.",
                ),
                Block::Item(
                    "timeout",
                    "Bound of checkcmd and reloadcmd, e.g. \"30s\" (default: reconfig's \
                     --command-timeout, 30 s); on timeout the command's whole process group \
                     is killed.",
                ),
                Block::Item(
                    "wait",
                    "Quiescence: {\"min\": \"100ms\", \"max\": \"2s\"} renders once no change \
                     came for min, at the latest max after the first; \"100ms\" means max = \
                     10 x min. Units: us, ms, s, m, h.",
                ),
                Block::Item(
                    "mode, owner, group",
                    "For the target, e.g. \"0640\", \"haproxy\"; default: the current file's, \
                     or 0644 and reconfig's user for a new file. When given they are kept: a \
                     file whose mode or owner differs is installed again.",
                ),
                Block::Item(
                    "mkdirs",
                    "Create the target's directory when missing (default: an error).",
                ),
                Block::Item(
                    "strict",
                    "true: an undefined variable in the template is an error instead of empty.",
                ),
                Block::Item(
                    "render_fuel",
                    "How much work one render may do (default 10000000, a whole number of at \
                     least 1). A render that runs out fails like any template error.",
                ),
                Block::Item(
                    "templates",
                    "Several files from one resource: a list of {\"source\", \"target\", \
                     \"mode\", \"owner\", \"group\"} instead of source/target (both is an \
                     error); the top-level mode, owner and group are defaults. All are rendered \
                     from one snapshot, checked together ({{src:N}} and {{target:N}} name the \
                     N-th file), installed together and followed by one reload; if any render \
                     or check fails none is installed, and a failure after install puts every \
                     file back.",
                ),
                Block::Item(
                    "backup",
                    "N (1 to 100): keep the last N replaced versions beside the target as \
                     TARGET.1 (newest) to TARGET.N, with their mode and owner.",
                ),
                Block::Item(
                    "min_keys",
                    "N: refuse to render while the watched key holds fewer than N leaves.",
                ),
                Block::Item(
                    "max_shrink",
                    "\"50%\": refuse a render that drops more than this share of the leaves \
                     the installed file was rendered from (remembered in --state-dir).",
                ),
                Block::Item(
                    "values",
                    "A regular expression every watched value must match as a whole; a value \
                     that does not is refused (on_bad_value).",
                ),
                Block::Item(
                    "on_bad_value",
                    "\"refuse\" (default): render nothing and name the key; \"skip\": render \
                     without the offending keys, logged once. A refusal by min_keys, \
                     max_shrink or values leaves the target untouched, makes --onetime exit 2 \
                     and clears by itself when the data recovers; --force overrides it once.",
                ),
            ],
        },
        Section {
            heading: "COMMANDS",
            blocks: &[Block::Para(
                "{{src}} and {{target}} in checkcmd and reloadcmd may be written bare, in \
                 single quotes or in double quotes; paths with spaces, quotes, $ or backticks \
                 are safe in all three. The paths are also in the environment variables \
                 RECONFIG_SRC and RECONFIG_TARGET.",
            )],
        },
        Section {
            heading: "APPLYING A CHANGE",
            blocks: &[Block::Para(
                "Output byte-identical to the target: nothing is written, no command run. \
                 Otherwise the new content is written to a temp file in the target's \
                 directory, synced, given its mode and owner, checked, renamed over the \
                 target (the file is always the whole old or the whole new content), and \
                 after splay the reloadcmd runs; a failed reload is retried with backoff. A \
                 render error, a missing key, a failed check or an unreachable etcd leave \
                 the target as it is.",
            )],
        },
        Section {
            heading: "TEMPLATES",
            blocks: &[
                Block::Para(
                    "Templates are MiniJinja (Jinja2). Maps iterate in key order, so the same \
                     data always renders the same file. The context:",
                ),
                Block::Item(
                    "reconfig.data (or data)",
                    "Full key to value of every leaf under the watched key (one entry for a \
                     leaf); with keys, under every one of them.",
                ),
                Block::Item(
                    "reconfig.altdata (or altdata)",
                    "Alias to (full key to value) for each altkeys entry; {} with a warning \
                     when the key is missing.",
                ),
                Block::Item(
                    "reconfig.watched (or watched)",
                    "The watched key, prefix applied; with keys, the first.",
                ),
                Block::Para(
                    "With \"pattern\": \"<% %>\", statements are <% ... %>, expressions \
                     <%= ... %>, comments <%# ... %>; \"#% %#\" gives #% %#, #%= %#, #%# %#.",
                ),
                Block::Para(
                    "Helpers beyond MiniJinja's built-ins: getv(key, default), exists(key), \
                     ls(dir), fromjson, tojson, tojson(indent=2), basename, dirname, \
                     getenv(name, default), keys(map), values(map).",
                ),
                Block::Example(
                    "{% for key, value in reconfig.data|items %}\n\
                     server {{ key|basename }} {{ value }} check\n\
                     {% endfor %}",
                ),
            ],
        },
        Section {
            heading: "SEE ALSO",
            blocks: &[Block::Para("reconfig(1), etcd-util(1).")],
        },
    ],
};
