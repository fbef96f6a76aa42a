//! Enrolling phones, logging in, revoking: each credential works exactly as
//! long as it should, refusals say what to do without giving anything away,
//! and no secret ever reaches the server's log.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use fieldnotes_tests::{
    accounts, init_test_logging, records, server_binary, world::World, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use reqwest::Method;
use schemas::{FieldRecord, TimesheetEntry};
use serde_json::{json, Value};
use server::auth::{admin, AuthError, Role};
use sqlx::postgres::PgListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_enrols_one_phone_and_is_refused_the_second_time() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;

    let invite = json!({ "territoryId": f.territory_a, "displayName": "Lou" });
    let (status, invitation) = server
        .as_(&f.coordinator.token)
        .post("/api/invitations", &invite)
        .await?;
    assert_eq!(status, 201, "{invitation}");
    let code = invitation["code"].as_str().unwrap();
    let qr: Value = serde_json::from_str(invitation["qrPayload"].as_str().unwrap())?;
    assert_eq!(qr["code"], code);

    // Typed by hand: lower case, a space instead of the dash.
    let typed = code.to_lowercase().replace('-', " ");
    let (status, enrolled) = server
        .anonymous()
        .post(
            "/api/enrol",
            &json!({ "code": typed, "deviceName": "Lou's phone" }),
        )
        .await?;
    assert_eq!(status, 201, "{enrolled}");
    assert_eq!(enrolled["territoryId"], f.territory_a.to_string());
    let credential = enrolled["credential"].as_str().unwrap();
    assert!(credential.starts_with("fnd_"));
    let (status, me) = server.as_(credential).get("/api/me").await?;
    assert_eq!(status, 200);
    assert_eq!(me["displayName"], "Lou");
    assert_eq!(me["memberships"][0]["role"], "volunteer");

    let (status, again) = server
        .anonymous()
        .post(
            "/api/enrol",
            &json!({ "code": code, "deviceName": "another phone" }),
        )
        .await?;
    assert_eq!(status, 410);
    assert!(message(&again).contains("already been used"), "{again}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_redemptions_of_one_code_exactly_one_wins() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let invitation = admin::create_invitation(
        &pool,
        f.territory_a,
        Role::Volunteer,
        "Lou",
        None,
        f.coordinator.account_id,
        chrono::Duration::hours(1),
    )
    .await?;

    let attempts = (0..8).map(|i| {
        let (pool, code) = (pool.clone(), invitation.code.clone());
        tokio::spawn(
            async move { admin::redeem_invitation(&pool, &code, &format!("phone {i}")).await },
        )
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await? {
            Ok(_) => won += 1,
            Err(AuthError::InvitationUsed) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(won, 1);
    let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM devices WHERE name LIKE 'phone %'")
        .fetch_one(&pool)
        .await?;
    assert_eq!(devices, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_unknown_or_mistyped_code_is_refused_saying_why() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let invitation = admin::create_invitation(
        &pool,
        f.territory_a,
        Role::Volunteer,
        "Lou",
        None,
        f.coordinator.account_id,
        chrono::Duration::hours(1),
    )
    .await?;
    sqlx::query("UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(invitation.id)
        .execute(&pool)
        .await?;

    let enrol = |code: &str| json!({ "code": code, "deviceName": "phone" });
    let (status, body) = server
        .anonymous()
        .post("/api/enrol", &enrol(&invitation.code))
        .await?;
    assert_eq!(status, 410);
    assert!(message(&body).contains("expired"), "{body}");

    let (status, body) = server
        .anonymous()
        .post("/api/enrol", &enrol("ABCDE-FGHJK"))
        .await?;
    assert_eq!(status, 401);
    assert!(message(&body).contains("not known"), "{body}");

    let (status, body) = server
        .anonymous()
        .post("/api/enrol", &enrol("ABCDE-FGHJO"))
        .await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "code");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_on_its_next_request_and_the_sync_channel_is_told(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let device = f.volunteer.device_id.unwrap();
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(admin::DEVICE_REVOKED_CHANNEL).await?;

    let (status, _) = server.as_(&f.volunteer.token).get("/api/me").await?;
    assert_eq!(status, 200);
    let revoke = format!("/api/devices/{device}/revoke");
    let (status, body) = server
        .as_(&f.coordinator.token)
        .send(Method::POST, &revoke, None)
        .await?;
    assert_eq!(status, 200, "{body}");

    let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await??;
    assert_eq!(notification.payload(), device.to_string());
    let (status, _) = server.as_(&f.volunteer.token).get("/api/me").await?;
    assert_eq!(status, 401);
    let (_, devices) = server.as_(&f.coordinator.token).get("/api/devices").await?;
    assert!(devices[0]["revokedAt"].is_string(), "{devices}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_revokes_their_own_lost_phone_from_another() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let second = admin::create_invitation(
        &pool,
        f.territory_a,
        Role::Volunteer,
        "Volunteer A",
        Some(f.volunteer.account_id),
        f.coordinator.account_id,
        chrono::Duration::hours(1),
    )
    .await?;
    let second = admin::redeem_invitation(&pool, &second.code, "tablet").await?;
    assert_eq!(second.account_id, f.volunteer.account_id);

    let lost = f.volunteer.device_id.unwrap();
    let (status, _) = server
        .as_(&second.credential)
        .send(Method::POST, &format!("/api/devices/{lost}/revoke"), None)
        .await?;
    assert_eq!(status, 200);
    let (status, _) = server.as_(&f.volunteer.token).get("/api/me").await?;
    assert_eq!(status, 401, "the lost phone");
    let (status, _) = server.as_(&second.credential).get("/api/me").await?;
    assert_eq!(status, 200, "the tablet");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_unknown_email_is_refused_alike() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let login = f.coordinator.login.as_ref().unwrap();

    let (status, wrong_password) = server
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": login.email, "password": "not the password" }),
        )
        .await?;
    assert_eq!(status, 401);
    let (status, unknown_email) = server
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": "nobody@example.org", "password": login.password }),
        )
        .await?;
    assert_eq!(status, 401);
    assert_eq!(
        wrong_password, unknown_email,
        "the refusal does not say which part was wrong"
    );

    // Emails are case-insensitive.
    let (status, session) = server
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": login.email.to_uppercase(), "password": login.password }),
        )
        .await?;
    assert_eq!(status, 200);
    assert!(session["token"].as_str().unwrap().starts_with("fns_"));
    assert!(session["expiresAt"].is_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_session_is_refused() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let token = Some(f.coordinator.token.as_str());

    let (status, _) = server
        .api(token)
        .send(Method::POST, "/api/auth/logout", None)
        .await?;
    assert_eq!(status, 204);
    let (status, body) = server.api(token).get("/api/me").await?;
    assert_eq!(status, 401);
    assert!(message(&body).contains("Bearer"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_refused_naming_the_field() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let a = f.territory_a;
    let admin_token = Some(f.admin.token.as_str());
    let lambert93 = json!({ "type": "Polygon", "coordinates": [[[842000, 6519000], [843000, 6519000], [843000, 6520000], [842000, 6519000]]] });
    let bowtie = json!({ "type": "Polygon", "coordinates": [[[4.8, 45.7], [4.9, 45.8], [4.9, 45.7], [4.8, 45.8], [4.8, 45.7]]] });

    for (path, body, status, field) in [
        (
            "/api/territories",
            json!({ "name": "T", "boundary": { "type": "Point", "coordinates": [4.8, 45.7] } }),
            400,
            "boundary",
        ),
        (
            "/api/territories",
            json!({ "name": "T", "boundary": { "type": "Polygon", "coordinates": "nope" } }),
            400,
            "boundary",
        ),
        (
            "/api/territories",
            json!({ "name": "T", "boundary": lambert93 }),
            400,
            "boundary",
        ),
        (
            "/api/territories",
            json!({ "name": "T", "boundary": bowtie }),
            400,
            "boundary",
        ),
        ("/api/territories", json!({ "name": "  " }), 400, "name"),
        (
            "/api/accounts",
            json!({ "displayName": "", "email": "x@example.org", "password": "long enough password" }),
            400,
            "displayName",
        ),
        (
            "/api/accounts",
            json!({ "displayName": "X", "email": "not an email", "password": "long enough password" }),
            400,
            "email",
        ),
        (
            "/api/accounts",
            json!({ "displayName": "X", "email": "x@example.org", "password": "short" }),
            400,
            "password",
        ),
        (
            "/api/accounts",
            json!({ "displayName": "X", "password": "long enough password" }),
            400,
            "email",
        ),
        (
            "/api/accounts",
            json!({ "email": "x@example.org" }),
            400,
            "displayName",
        ),
        (
            "/api/invitations",
            json!({ "territoryId": a, "displayName": "Lou", "role": "king" }),
            400,
            "role",
        ),
        (
            "/api/invitations",
            json!({ "territoryId": a, "displayName": "Lou", "ttlHours": 0 }),
            400,
            "ttlHours",
        ),
        (
            "/api/invitations",
            json!({ "territoryId": "A", "displayName": "Lou" }),
            400,
            "territoryId",
        ),
        (
            &format!("/api/territories/{a}/sites"),
            json!({ "name": "Swapped", "decimalLatitude": 4.835, "decimalLongitude": 45.775 }),
            400,
            "decimalLatitude",
        ),
        (
            &format!("/api/territories/{a}/sites"),
            json!({ "name": "Pond", "decimalLatitude": 95, "decimalLongitude": 4.8 }),
            400,
            "decimalLatitude",
        ),
    ] {
        let (got, response) = server.api(admin_token).post(path, &body).await?;
        assert_eq!(got, status, "{path} {body}: {response}");
        assert_eq!(
            response["error"]["field"], field,
            "{path} {body}: {response}"
        );
        assert!(!message(&response).is_empty());
    }

    let taken = f.coordinator.login.as_ref().unwrap().email.to_uppercase();
    let body = json!({ "displayName": "Twin", "email": taken, "password": "long enough password" });
    let (status, response) = server.api(admin_token).post("/api/accounts", &body).await?;
    assert_eq!(status, 409, "{response}");
    assert_eq!(response["error"]["field"], "email");

    let (status, response) = server
        .api(admin_token)
        .get("/api/territories/not-a-uuid")
        .await?;
    assert_eq!(status, 400);
    assert_eq!(response["error"]["field"], "id");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_tokens_credentials_and_codes_never_reach_the_server_log() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let log = tempfile::NamedTempFile::new()?;
    let server =
        ServerProcess::start_logged(&db.url, log.path(), "debug,tower_http=trace,axum=trace")?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let login = f.coordinator.login.as_ref().unwrap();
    let wrong_password = "not-the-password-but-close";

    // A failed and a successful login, an invitation, an enrolment, requests
    // with each kind of credential, a sync handshake with the token in the query.
    server
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": login.email, "password": wrong_password }),
        )
        .await?;
    let (_, session) = server
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": login.email, "password": login.password }),
        )
        .await?;
    let session = session["token"].as_str().unwrap().to_string();
    let invite = json!({ "territoryId": f.territory_a, "displayName": "Lou" });
    let (_, invitation) = server
        .as_(&session)
        .post("/api/invitations", &invite)
        .await?;
    let code = invitation["code"].as_str().unwrap().to_string();
    let (_, enrolled) = server
        .anonymous()
        .post(
            "/api/enrol",
            &json!({ "code": code, "deviceName": "phone" }),
        )
        .await?;
    let credential = enrolled["credential"].as_str().unwrap().to_string();
    server.as_(&credential).get("/api/me").await?;
    server.as_(&session).get("/api/sightings").await?;
    server
        .anonymous()
        .post(
            "/api/enrol",
            &json!({ "code": code, "deviceName": "again" }),
        )
        .await?;
    let new_password = "the auditor's new password";
    server.as_(&f.admin.token).post("/api/accounts", &json!({ "displayName": "Auditor", "email": "auditor@example.org", "password": new_password })).await?;
    let mut url = server.sync_url();
    url.set_query(Some(&format!("token={credential}")));
    if let Ok((mut socket, _)) =
        tokio_tungstenite::connect_async(url.as_str().into_client_request()?).await
    {
        let _ = socket.close(None).await;
    }
    drop(server);

    let text = std::fs::read_to_string(log.path())?;
    assert!(
        text.contains("/api/enrol"),
        "the log holds the requests (is it written?):\n{text}"
    );
    for (what, secret) in [
        ("the password", login.password.as_str()),
        ("a wrong password", wrong_password),
        ("a new account's password", new_password),
        ("the session token", session.as_str()),
        ("the fixture's session token", f.coordinator.token.as_str()),
        ("the device credential", credential.as_str()),
        ("the invitation code", code.as_str()),
        (
            "the invitation code without its dash",
            &code.replace('-', ""),
        ),
    ] {
        assert!(!text.contains(secret), "{what} is in the server log");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_reads_the_password_from_stdin_and_the_admin_can_log_in() -> anyhow::Result<()>
{
    init_test_logging();
    let db = TestDatabase::create().await?;
    let create_admin = |password: &'static str| -> anyhow::Result<std::process::Output> {
        let mut child = Command::new(server_binary()?)
            .args([
                "create-admin",
                "--email",
                "Admin@Example.org",
                "--display-name",
                "Camille",
            ])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        writeln!(child.stdin.take().unwrap(), "{password}")?;
        Ok(child.wait_with_output()?)
    };

    let short = create_admin("short")?;
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("password"),
        "{short:?}"
    );

    let created = create_admin("a passphrase typed once")?;
    assert!(created.status.success(), "{created:?}");
    let printed: Value = serde_json::from_slice(&created.stdout)?;
    assert_eq!(printed["isAdmin"], true);

    let pool = db.pool().await?;
    let session = admin::login(&pool, "admin@example.org", "a passphrase typed once").await?;
    let session = session.expect("the new admin logs in");
    let principal = server::auth::authenticate(&pool, &session.token)
        .await?
        .unwrap();
    assert!(principal.is_admin);
    assert_eq!(principal.display_name, "Camille");

    let again = create_admin("a passphrase typed once")?;
    assert!(
        !again.status.success(),
        "a second admin with the same email"
    );
    Ok(())
}

/// Online password guessing is throttled per email, across server processes
/// (the count is in the database) and whether or not the email has an account;
/// other accounts are unaffected, and the window's end lifts the throttle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_login_attempts_for_one_email_are_throttled() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let other_process = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let target = f
        .coordinator
        .login
        .as_ref()
        .expect("the coordinator has a password");
    let bystander = f
        .auditor
        .login
        .as_ref()
        .expect("the auditor has a password");
    let login = |server: &ServerProcess, email: &str, password: &str| {
        let request = reqwest::Client::new()
            .post(server.http_url("/api/auth/login"))
            .json(&json!({ "email": email, "password": password }));
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let body: Value = response.json().await?;
            anyhow::Ok((status, retry_after, body))
        }
    };

    for attempt in 0..admin::MAX_LOGIN_ATTEMPTS {
        // Alternating processes: the count is shared.
        let via = if attempt % 2 == 0 {
            &server
        } else {
            &other_process
        };
        let (status, _, _) = login(via, &target.email, "not the password").await?;
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let (status, retry_after, body) = login(&server, &target.email, &target.password).await?;
    assert_eq!(status, 429, "even the right password waits: {body}");
    assert!(message(&body).contains("too many login attempts"), "{body}");
    let retry_after = retry_after.expect("a Retry-After header");
    assert!(
        retry_after > 0 && retry_after <= admin::LOGIN_WINDOW.num_seconds() as u64,
        "{retry_after}"
    );

    // Unknown emails are counted the same way: the throttle tells nothing.
    for _ in 0..admin::MAX_LOGIN_ATTEMPTS {
        login(&server, "nobody@example.org", "guess").await?;
    }
    let (status, _, _) = login(&server, "nobody@example.org", "guess").await?;
    assert_eq!(status, 429);

    let (status, _, _) = login(&other_process, &bystander.email, &bystander.password).await?;
    assert_eq!(status, 200, "another account logs in as usual");

    // The window ends: the right password works again.
    sqlx::query("UPDATE login_attempts SET window_started = now() - interval '1 hour'")
        .execute(&pool)
        .await?;
    let (status, _, body) = login(&server, &target.email, &target.password).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_file_are_plain_text_and_json_with_log_format_json() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;

    // Text, written to a file: no terminal escape codes.
    let log = tempfile::NamedTempFile::new()?;
    let mut server = ServerProcess::start_logged(&db.url, log.path(), "info")?;
    server.anonymous().get("/health").await?;
    server.terminate()?;
    let text = std::fs::read_to_string(log.path())?;
    assert!(
        text.contains("serving HTTP API"),
        "is the log written?\n{text}"
    );
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file:\n{text:?}"
    );

    // JSON: one object per line, with its level and message.
    let log = tempfile::NamedTempFile::new()?;
    let mut server =
        ServerProcess::start_logged_with(&db.url, log.path(), "info", &["--log-format", "json"])?;
    server.anonymous().get("/health").await?;
    server.terminate()?;
    let text = std::fs::read_to_string(log.path())?;
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{e}: {line:?}")))
        .collect::<anyhow::Result<_>>()?;
    assert!(
        lines.iter().any(|line| line["level"] == "INFO"
            && line["fields"]["message"] == "serving HTTP API and /sync"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
    Ok(())
}

/// A person's own sessions: listed with the current one marked; one ended
/// from another is refused from then on; another person's session, or one
/// already ended, is not found (never ended); a password change checks the
/// old password and the new one's length, each refusal naming its field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_lists_and_ends_their_own_sessions_and_changes_their_password(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let login = f.coordinator.login.as_ref().expect("a password account");
    let second = admin::login(&pool, &login.email, &login.password)
        .await?
        .expect("the coordinator logs in");

    let (status, sessions) = server
        .as_(&f.coordinator.token)
        .get("/api/me/sessions")
        .await?;
    assert_eq!(status, 200, "{sessions}");
    let sessions = sessions.as_array().expect("a list").clone();
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{sessions:?}");
    let (_, me) = server.as_(&second.token).get("/api/me").await?;
    let second_id = me["credential"]["id"].as_str().unwrap().to_string();
    assert!(sessions
        .iter()
        .any(|s| s["id"] == second_id.as_str() && s["current"] == false));

    // Another person's session is not theirs to end.
    let (_, auditor) = server.as_(&f.auditor.token).get("/api/me").await?;
    let auditor_session = auditor["credential"]["id"].as_str().unwrap();
    let (status, body) = server
        .as_(&f.coordinator.token)
        .send(
            Method::DELETE,
            &format!("/api/me/sessions/{auditor_session}"),
            None,
        )
        .await?;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server.as_(&f.auditor.token).get("/api/me").await?;
    assert_eq!(status, 200, "the auditor's session is untouched");

    let path = format!("/api/me/sessions/{second_id}");
    let (status, body) = server
        .as_(&f.coordinator.token)
        .send(Method::DELETE, &path, None)
        .await?;
    assert_eq!(status, 204, "{body}");
    let (status, _) = server.as_(&second.token).get("/api/me").await?;
    assert_eq!(status, 401, "an ended session is refused");
    let (status, body) = server
        .as_(&f.coordinator.token)
        .send(Method::DELETE, &path, None)
        .await?;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server
        .as_(&f.coordinator.token)
        .send(Method::DELETE, "/api/me/sessions/not-a-uuid", None)
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("id")),
        "{body}"
    );

    let change = |old: &str, new: &str| json!({ "oldPassword": old, "newPassword": new });
    let (status, body) = server
        .as_(&f.coordinator.token)
        .put(
            "/api/me/password",
            &change("wrong", "a long enough new password"),
        )
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("oldPassword")),
        "{body}"
    );
    let (status, body) = server
        .as_(&f.coordinator.token)
        .put("/api/me/password", &change(&login.password, "short"))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("newPassword")),
        "{body}"
    );
    assert!(admin::login(&pool, &login.email, &login.password)
        .await?
        .is_some());
    let (status, body) = server
        .as_(&f.coordinator.token)
        .put(
            "/api/me/password",
            &change(&login.password, "a long enough new password"),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert!(admin::login(&pool, &login.email, &login.password)
        .await?
        .is_none());
    assert!(
        admin::login(&pool, &login.email, "a long enough new password")
            .await?
            .is_some()
    );
    let (status, _) = server.as_(&f.coordinator.token).get("/api/me").await?;
    assert_eq!(status, 200, "the session that made the change stays open");

    // Guessing the old password from a stolen session is throttled as logins are.
    let guess = change("a guess", "a long enough new password");
    for _ in 0..admin::MAX_LOGIN_ATTEMPTS {
        let (status, body) = server
            .as_(&f.auditor.token)
            .put("/api/me/password", &guess)
            .await?;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = server
        .as_(&f.auditor.token)
        .put("/api/me/password", &guess)
        .await?;
    assert_eq!(status, 429, "{body}");
    Ok(())
}

/// A forgotten password: only an admin issues a reset code, for an email
/// that has an active account; the code sets a new password once, ends the
/// account's sessions, and a newer code withdraws an older one; unknown,
/// reused and withdrawn codes are refused saying what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_issues_a_one_time_reset_code_that_sets_a_new_password() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let login = f.coordinator.login.as_ref().expect("a password account");

    let ask = json!({ "email": login.email.to_uppercase() });
    let (status, body) = server
        .as_(&f.coordinator.token)
        .post("/api/password-resets", &ask)
        .await?;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server
        .as_(&f.admin.token)
        .post(
            "/api/password-resets",
            &json!({ "email": "nobody@example.org" }),
        )
        .await?;
    assert_eq!(status, 404, "{body}");

    let (status, first) = server
        .as_(&f.admin.token)
        .post("/api/password-resets", &ask)
        .await?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["accountId"], f.coordinator.account_id.to_string());
    let (status, second) = server
        .as_(&f.admin.token)
        .post("/api/password-resets", &ask)
        .await?;
    assert_eq!(status, 201, "{second}");

    let reset = |code: &Value, password: &str| json!({ "code": code, "newPassword": password });
    let new_password = "a password found again";
    let (status, body) = server
        .anonymous()
        .post(
            "/api/auth/password-reset",
            &reset(&first["code"], new_password),
        )
        .await?;
    assert_eq!(status, 410, "a newer code withdraws the older one: {body}");
    assert!(
        message(&body).contains("ask an admin for a new one"),
        "{body}"
    );
    let (status, body) = server
        .anonymous()
        .post(
            "/api/auth/password-reset",
            &reset(&json!("fnr_not-a-code"), new_password),
        )
        .await?;
    assert_eq!(status, 401, "{body}");
    let (status, body) = server
        .anonymous()
        .post("/api/auth/password-reset", &reset(&second["code"], "short"))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("newPassword")),
        "{body}"
    );

    let (status, body) = server
        .anonymous()
        .post(
            "/api/auth/password-reset",
            &reset(&second["code"], new_password),
        )
        .await?;
    assert_eq!(status, 204, "{body}");
    let (status, _) = server.as_(&f.coordinator.token).get("/api/me").await?;
    assert_eq!(status, 401, "the account's sessions are ended");
    assert!(admin::login(&pool, &login.email, &login.password)
        .await?
        .is_none());
    assert!(admin::login(&pool, &login.email, new_password)
        .await?
        .is_some());
    let (status, body) = server
        .anonymous()
        .post(
            "/api/auth/password-reset",
            &reset(&second["code"], "yet another password"),
        )
        .await?;
    assert_eq!(status, 410, "a code works once: {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_invitations_is_listed_with_its_states_and_a_pending_one_revoked(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let coordinator = server.as_(&f.coordinator.token);

    // Numbered from a prefix: one code each, in order, each shown once.
    let (status, batch) = coordinator
        .post(
            "/api/invitations/batch",
            &json!({ "territoryId": f.territory_a, "prefix": "Classe 5B", "count": 3 }),
        )
        .await?;
    assert_eq!(status, 201, "{batch}");
    let cards = batch["invitations"].as_array().unwrap();
    let names: Vec<&str> = cards
        .iter()
        .map(|card| card["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Classe 5B 1", "Classe 5B 2", "Classe 5B 3"]);
    let codes: std::collections::HashSet<&str> = cards
        .iter()
        .map(|card| card["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 3, "{batch}");
    for card in cards {
        let qr: Value = serde_json::from_str(card["qrPayload"].as_str().unwrap())?;
        assert_eq!(qr["code"], card["code"]);
    }

    // Bounded, naming the field; names and a prefix are not mixed.
    let (status, body) = coordinator
        .post(
            "/api/invitations/batch",
            &json!({ "territoryId": f.territory_a, "prefix": "Fête", "count": 101 }),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "count");
    let too_many: Vec<String> = (0..101).map(|n| format!("Volunteer {n}")).collect();
    let (status, body) = coordinator
        .post(
            "/api/invitations/batch",
            &json!({ "territoryId": f.territory_a, "names": too_many }),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "names");
    let (status, body) = coordinator
        .post(
            "/api/invitations/batch",
            &json!({ "territoryId": f.territory_a, "names": ["Lou", " "] }),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "names");
    let (status, body) = coordinator
        .post(
            "/api/invitations/batch",
            &json!({ "territoryId": f.territory_a, "names": ["Lou"], "prefix": "X", "count": 2 }),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "names");

    // One redeemed, one revoked, one left pending; and an expired one.
    let redeemed = &cards[0];
    let (status, _) = server
        .anonymous()
        .post(
            "/api/enrol",
            &json!({ "code": redeemed["code"], "deviceName": "phone" }),
        )
        .await?;
    assert_eq!(status, 201);
    let revoked = &cards[1];
    let revoke = |id: &Value| format!("/api/invitations/{}/revoke", id.as_str().unwrap());
    let (status, body) = coordinator
        .post(&revoke(&revoked["id"]), &json!({}))
        .await?;
    assert_eq!(status, 204, "{body}");
    let expired = admin::create_invitation(
        &pool,
        f.territory_a,
        Role::Volunteer,
        "Late",
        None,
        f.coordinator.account_id,
        chrono::Duration::hours(1),
    )
    .await?;
    sqlx::query("UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(expired.id)
        .execute(&pool)
        .await?;

    let (status, list) = coordinator
        .get(&format!("/api/territories/{}/invitations", f.territory_a))
        .await?;
    assert_eq!(status, 200, "{list}");
    let states: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["displayName"].as_str().unwrap(),
                i["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states[0], ("Late", "expired"), "newest first: {list}");
    assert!(states.contains(&("Classe 5B 1", "redeemed")), "{list}");
    assert!(states.contains(&("Classe 5B 2", "revoked")), "{list}");
    assert!(states.contains(&("Classe 5B 3", "pending")), "{list}");
    assert!(
        !list
            .to_string()
            .contains(cards[2]["code"].as_str().unwrap()),
        "no code in the list"
    );

    // The revoked code is refused saying so; a redeemed one cannot be revoked.
    let (status, body) = server
        .anonymous()
        .post(
            "/api/enrol",
            &json!({ "code": revoked["code"], "deviceName": "phone" }),
        )
        .await?;
    assert_eq!(status, 410, "{body}");
    assert!(message(&body).contains("withdrawn"), "{body}");
    let (status, body) = coordinator
        .post(&revoke(&redeemed["id"]), &json!({}))
        .await?;
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("revoke the phone"), "{body}");
    let (status, body) = coordinator
        .post(&revoke(&revoked["id"]), &json!({}))
        .await?;
    assert_eq!(status, 409, "{body}");
    let (status, body) = coordinator
        .post(&revoke(&json!(uuid::Uuid::new_v4())), &json!({}))
        .await?;
    assert_eq!(status, 404, "{body}");
    Ok(())
}

/// Inserts one row per (what, age) and says which it expects kept.
async fn aged_rows(pool: &sqlx::PgPool, f: &accounts::Fixture) -> anyhow::Result<()> {
    let account = f.coordinator.account_id;
    // Sessions: ended 40 and 31 days ago (gone); logged out 10 days ago and
    // open (kept).
    for (id, expires, revoked) in [
        ("40 expired", "-40 days", None),
        ("31 ended", "+1 day", Some("-31 days")),
        ("10 ended", "+1 day", Some("-10 days")),
        ("open", "+1 day", None),
    ] {
        sqlx::query(
            "INSERT INTO sessions (id, account_id, token_hash, expires_at, revoked_at) \
             VALUES (gen_random_uuid(), $1, $2, now() + $3::interval, now() + $4::interval)",
        )
        .bind(account)
        .bind(format!("retention {id}"))
        .bind(expires)
        .bind(revoked)
        .execute(pool)
        .await?;
    }
    // Invitations: expired 100 days ago, redeemed 91 days ago (gone);
    // revoked 10 days ago, pending (kept).
    for (name, expires, redeemed, revoked) in [
        ("expired 100", "-100 days", None, None),
        ("redeemed 91", "+1 day", Some("-91 days"), None),
        ("revoked 10", "+1 day", None, Some("-10 days")),
        ("pending", "+1 day", None, None),
    ] {
        sqlx::query(
            "INSERT INTO invitations (id, code_hash, territory_id, role, display_name, created_by, \
                                      expires_at, redeemed_at, revoked_at) \
             VALUES (gen_random_uuid(), $1, $2, 'volunteer', $3, $4, now() + $5::interval, \
                     now() + $6::interval, now() + $7::interval)",
        )
        .bind(format!("retention {name}"))
        .bind(f.territory_a)
        .bind(format!("retention {name}"))
        .bind(account)
        .bind(expires)
        .bind(redeemed)
        .bind(revoked)
        .execute(pool)
        .await?;
    }
    // Password resets: expired 31 days ago (gone), still usable (kept).
    for (name, expires) in [("expired 31", "-31 days"), ("usable", "+1 day")] {
        sqlx::query(
            "INSERT INTO password_resets (id, account_id, code_hash, issued_by, expires_at) \
             VALUES (gen_random_uuid(), $1, $2, $1, now() + $3::interval)",
        )
        .bind(account)
        .bind(format!("retention {name}"))
        .bind(expires)
        .execute(pool)
        .await?;
    }
    // Login attempts: a window over an hour ago (gone), one open (kept).
    for (key, started) in [("old@example.org", "-1 hour"), ("now@example.org", "0")] {
        sqlx::query(
            "INSERT INTO login_attempts (email_key, attempts, window_started) \
             VALUES ($1, 3, now() + $2::interval)",
        )
        .bind(key)
        .bind(started)
        .execute(pool)
        .await?;
    }
    // Photo uploads: untouched for 8 days (gone, with its chunk), yesterday's (kept).
    for (digit, touched) in [("a", "-8 days"), ("b", "-1 day")] {
        let sha256 = digit.repeat(64);
        sqlx::query(
            "INSERT INTO photo_uploads (sha256, account_id, territory_id, expected_size, updated_at) \
             VALUES ($1, $2, $3, 10, now() + $4::interval)",
        )
        .bind(&sha256)
        .bind(account)
        .bind(f.territory_a)
        .bind(touched)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO photo_upload_chunks (sha256, account_id, byte_offset, data) \
             VALUES ($1, $2, 0, '\\x0102')",
        )
        .bind(&sha256)
        .bind(account)
        .execute(pool)
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn personal_data_past_its_retention_is_purged_and_the_rest_kept() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    aged_rows(&pool, &f).await?;
    let texts = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let mut kept: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await?;
            kept.sort();
            anyhow::Ok(kept)
        }
    };

    let deleted = server::retention::purge(&pool).await?;
    assert_eq!(deleted, 2 + 2 + 1 + 1 + 1, "rows purged");
    assert_eq!(
        texts("SELECT token_hash FROM sessions WHERE token_hash LIKE 'retention %'").await?,
        ["retention 10 ended", "retention open"]
    );
    assert_eq!(
        texts("SELECT display_name FROM invitations WHERE display_name LIKE 'retention %'").await?,
        ["retention pending", "retention revoked 10"]
    );
    assert_eq!(
        texts("SELECT code_hash FROM password_resets WHERE code_hash LIKE 'retention %'").await?,
        ["retention usable"]
    );
    assert_eq!(
        texts("SELECT email_key FROM login_attempts").await?,
        ["now@example.org"]
    );
    assert_eq!(
        texts("SELECT sha256 FROM photo_upload_chunks").await?,
        ["b".repeat(64)],
        "an abandoned upload's chunks go with it"
    );
    assert_eq!(
        server::retention::purge(&pool).await?,
        0,
        "a second purge finds nothing"
    );
    Ok(())
}

/// A volunteer downloads what the service holds about them: their account
/// and phone, the records of their notebook as they typed them, and the
/// coordinator's decision about one; nothing of another volunteer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_downloads_their_own_data_and_only_theirs() -> anyhow::Result<()> {
    let world = World::builder("Parc des données")
        .coordinator("Coordination")
        .volunteer("Camille")
        .volunteer("Bob")
        .build()
        .await?;
    let t = world.territory.id;
    let url = world.server.sync_url();
    let camille = world.volunteer("Camille");
    let tit = records::sighting(camille.account_id, "Parus major", 2);
    let hours = TimesheetEntry::from_raw(&records::timesheet_json(camille.account_id))
        .expect("the sample timesheet entry is valid");
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    phone.record(&tit)?;
    phone.record(&hours)?;
    phone.go_online(&url).await?;
    phone.wait_synced(Duration::from_secs(30)).await?;
    let bob = world.volunteer("Bob");
    let mut bobs = Phone::new_notebook(bob.notebook(), Some(bob.device.clone())).await?;
    bobs.record(&records::sighting(bob.account_id, "Turdus merula", 1))?;
    bobs.go_online(&url).await?;
    bobs.wait_synced(Duration::from_secs(30)).await?;
    let decided = world
        .server
        .as_(&world.coordinator().token)
        .post(
            &format!("/api/territories/{t}/review/decisions"),
            &json!({"decision": "verification", "status": "1", "records": [tit.id()], "reason": "photo nette"}),
        )
        .await?;
    assert_eq!(decided.0, 200, "{}", decided.1);

    let response = reqwest::Client::new()
        .get(world.server.http_url("/api/me/data"))
        .bearer_auth(&camille.device.secret)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("fieldnotes-my-data.json")),
        "a download"
    );
    let data: Value = response.json().await?;
    assert_eq!(data["account"]["displayName"], "Camille", "{data}");
    assert_eq!(data["devices"].as_array().map(Vec::len), Some(1), "{data}");
    assert_eq!(data["memberships"][0]["role"], "volunteer");
    let records = data["notebooks"][0]["records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut kinds: Vec<&str> = records.iter().filter_map(|r| r["kind"].as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["sighting", "timesheet_entry"], "{data}");
    let sighting = records
        .iter()
        .find(|r| r["kind"] == "sighting")
        .expect("the sighting");
    assert_eq!(sighting["record"]["scientificName"], "Parus major");
    assert_eq!(sighting["record"]["individualCount"], 2);
    assert_eq!(
        (
            &data["decisions"][0]["recordId"],
            &data["decisions"][0]["status"],
            &data["decisions"][0]["reason"],
            &data["decisions"][0]["decidedBy"]
        ),
        (
            &json!(tit.id()),
            &json!("1"),
            &json!("photo nette"),
            &json!("Coordination")
        )
    );
    assert!(
        !data.to_string().contains("Turdus merula"),
        "nothing of Bob's: {data}"
    );
    let anonymous = reqwest::get(world.server.http_url("/api/me/data")).await?;
    assert_eq!(anonymous.status(), 401);
    Ok(())
}
