//! etcd auth against a real etcd with auth enabled, on both APIs: v2 (HTTP Basic; the guest
//! role stripped of its permissions, so that unauthenticated requests get 401) and v3 (a
//! token from `/v3/auth/authenticate`; no guest role).

mod support;

use support::stderr;

use serde_json::json;
use std::process::Output;
use std::time::Duration;
use support::daemon::{wait_content, Setup};
use support::v3::b64;
use support::{both_apis, run_bin, Api, Etcd};

const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");
const ROOT_PASSWORD: &str = "r00t pw";
const SECS: Duration = Duration::from_secs(10);

/// One admin call to etcd's v2 auth API; panics unless it succeeds.
fn auth_api(etcd: &Etcd, path: &str, body: serde_json::Value, as_root: bool) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.put(&format!("{}/v2/auth/{path}", etcd.url()));
    if as_root {
        request = request.header("Authorization", "Basic cm9vdDpyMDB0IHB3"); // root:r00t pw
    }
    let mut response = request
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("auth API request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert!(status < 300, "PUT /v2/auth/{path}: HTTP {status}: {text}");
}

/// One admin call to etcd's v3 auth API (through the gateway, before auth is on); panics
/// unless it succeeds.
fn v3_auth_api(etcd: &Etcd, path: &str, body: serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&format!("{}/v3/auth/{path}", etcd.url()))
        .send(body.to_string())
        .expect("auth API request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert!(status < 300, "POST /v3/auth/{path}: HTTP {status}: {text}");
}

/// An etcd with `/app/v` = "first", user root, user alice allowed /app/* only, auth on.
fn etcd_with_auth(api: Api) -> Etcd {
    let etcd = Etcd::start_on(api);
    etcd.put("/app/v", "first");
    etcd.put("/secret/v", "hidden");
    if api == Api::V3 {
        let user = |name: &str, password: &str, role: &str| {
            v3_auth_api(
                &etcd,
                "user/add",
                json!({"name": name, "password": password}),
            );
            v3_auth_api(&etcd, "user/grant", json!({"user": name, "role": role}));
        };
        v3_auth_api(&etcd, "role/add", json!({"name": "root"}));
        user("root", ROOT_PASSWORD, "root");
        v3_auth_api(&etcd, "role/add", json!({"name": "app"}));
        // v2's /app/* is the prefix /app/ on v3: [/app/, /app0).
        let perm = json!({"permType": "READWRITE", "key": b64("/app/"), "range_end": b64("/app0")});
        v3_auth_api(&etcd, "role/grant", json!({"name": "app", "perm": perm}));
        user("alice", "alice pw", "app");
        v3_auth_api(&etcd, "enable", json!({}));
        return etcd;
    }
    let root = json!({"user": "root", "password": ROOT_PASSWORD});
    auth_api(&etcd, "users/root", root, false);
    auth_api(&etcd, "enable", json!({}), false);
    // Enabling auth gives the guest role read/write on everything; take it away.
    let revoke = json!({"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}});
    auth_api(&etcd, "roles/guest", revoke, true);
    let app_role =
        json!({"role": "app", "permissions": {"kv": {"read": ["/app/*"], "write": ["/app/*"]}}});
    auth_api(&etcd, "roles/app", app_role, true);
    let alice = json!({"user": "alice", "password": "alice pw", "roles": ["app"]});
    auth_api(&etcd, "users/alice", alice, true);
    etcd
}

/// etcd-util on `etcd`, speaking the API under test.
fn util(etcd: &Etcd, args: &[&str]) -> Output {
    let mut all = vec!["--endpoints".to_string(), etcd.url()];
    all.extend(etcd.api_args());
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run_bin(ETCD_UTIL, &all, Duration::from_secs(20))
}

fn password_file(dir: &std::path::Path, password: &str) -> String {
    let path = dir.join("password");
    std::fs::write(&path, format!("{password}\n")).expect("password file");
    path.display().to_string()
}

fn value_resource(setup: &Setup, key: &str) -> serde_json::Value {
    setup.template("v.tmpl", "value={{ reconfig.data[reconfig.watched] }}\n");
    json!({"id": "v", "key": key, "source": "v.tmpl", "target": setup.out("v.conf")})
}

both_apis!(etcd_util_authenticates_with_a_password_or_a_password_file);
fn etcd_util_authenticates_with_a_password_or_a_password_file(api: Api) {
    let etcd = etcd_with_auth(api);
    let root = ["--username", "root", "--password", ROOT_PASSWORD];
    let set = util(
        &etcd,
        &[&root[..], &["-o", "set", "-k", "/app/v", "-v", "second"]].concat(),
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));

    let dir = tempfile::tempdir().expect("temp dir");
    let file = password_file(dir.path(), "alice pw");
    let alice = ["--username", "alice", "--password-file", file.as_str()];
    let get = util(&etcd, &[&alice[..], &["-k", "/app/v"]].concat());
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert!(String::from_utf8_lossy(&get.stdout).contains("second"));
}

both_apis!(refusals_name_the_user_and_the_endpoint);
fn refusals_name_the_user_and_the_endpoint(api: Api) {
    let etcd = etcd_with_auth(api);
    let anonymous = util(&etcd, &["-k", "/app/v"]);
    assert_eq!(anonymous.status.code(), Some(3), "{}", stderr(&anonymous));
    // The HTTP status and etcd's own words differ: v2 answers 401, v3's gateway 400 with
    // "(etcdserver: user name is empty)"; what the user reads is the same.
    let message = stderr(&anonymous);
    assert!(
        message.contains(&format!("{}: unauthorized: HTTP 40", etcd.url()))
            && message.contains("etcd requires authentication")
            && message.contains("; pass --username"),
        "{message}"
    );

    let wrong = util(
        &etcd,
        &["--username", "root", "--password", "nope", "-k", "/app/v"],
    );
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));
    let message = stderr(&wrong);
    assert!(
        message.contains(&format!("{}: unauthorized: HTTP 40", etcd.url()))
            && message.contains("etcd refused user \"root\""),
        "{message}"
    );

    // alice may not read outside /app.
    let outside = util(
        &etcd,
        &[
            "--username",
            "alice",
            "--password",
            "alice pw",
            "-k",
            "/secret/v",
        ],
    );
    assert_eq!(outside.status.code(), Some(3), "{}", stderr(&outside));
    assert!(
        stderr(&outside).contains("etcd refused user \"alice\""),
        "{}",
        stderr(&outside)
    );
}

#[test]
fn bad_credential_flags_are_refused_at_startup() {
    let missing = "/nonexistent/etcd-password";
    let out = run_bin(
        ETCD_UTIL,
        &["--username", "root", "--password-file", missing, "-k", "/x"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("--password-file {missing}: cannot read")),
        "{}",
        stderr(&out)
    );
    let out = run_bin(
        ETCD_UTIL,
        &["--password", "x", "-k", "/x"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--password needs --username"),
        "{}",
        stderr(&out)
    );
}

both_apis!(reconfig_onetime_and_daemon_converge_with_credentials);
fn reconfig_onetime_and_daemon_converge_with_credentials(api: Api) {
    let etcd = etcd_with_auth(api);
    let setup = Setup::new();
    setup.resource("v", value_resource(&setup, "/app/v"));
    let target = setup.out("v.conf");

    let refused = setup.onetime(&etcd, &["--username", "alice", "--password", "wrong"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("etcd refused user \"alice\""),
        "{}",
        stderr(&refused)
    );
    assert!(!target.exists(), "nothing rendered without access");

    let file = password_file(setup.dir.path(), "alice pw");
    let alice = ["--username", "alice", "--password-file", file.as_str()];
    let once = setup.onetime(&etcd, &alice);
    assert_eq!(once.status.code(), Some(0), "{}", stderr(&once));
    assert_eq!(support::read(&target).as_deref(), Some("value=first\n"));

    // The daemon's watches carry the credentials too.
    let daemon = setup.daemon(&etcd, &alice);
    let set = util(
        &etcd,
        &[
            "--username",
            "root",
            "--password",
            ROOT_PASSWORD,
            "-o",
            "set",
            "-k",
            "/app/v",
            "-v",
            "third",
        ],
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    assert!(
        wait_content(&target, "value=third\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(register_refused_by_etcd_exits_naming_the_key_and_the_endpoint);
fn register_refused_by_etcd_exits_naming_the_key_and_the_endpoint(api: Api) {
    let etcd = etcd_with_auth(api);
    // alice may write under /app only: a daemon would retry an unreachable etcd for ever,
    // but a refusal cannot get better by retrying.
    let refused = util(
        &etcd,
        &[
            "--username",
            "alice",
            "--password",
            "alice pw",
            "-o",
            "REGISTER",
            "-k",
            "/secret/backend",
            "-v",
            "10.0.0.5:80",
            "-t",
            "2",
        ],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("cannot register /secret/backend: ")
            && message.contains(&etcd.url())
            && message.contains("etcd refused user \"alice\""),
        "{message}"
    );
}
