//! People for end-to-end tests, made through the server's own account API
//! (`server::auth::admin`) on the test database: a fixture with one person per
//! role in territory A, a volunteer in territory B, sites and documents in
//! both (the HTTP client that presents their credentials is [`crate::api`]).

use server::auth::{admin, Role};
use sqlx::PgPool;
use uuid::Uuid;

/// Someone who can call the API. `token` is a session token for people who
/// log in with a password, a device credential for volunteers (enrolled
/// through a real invitation, as a phone is).
pub struct Actor {
    pub account_id: Uuid,
    pub token: String,
    /// Set for people who log in with a password.
    pub login: Option<Login>,
    /// Set for people whose token is a device credential.
    pub device_id: Option<Uuid>,
}

pub struct Login {
    pub email: String,
    pub password: String,
}

/// Territories A and B; one person per role in A, a volunteer in B.
pub struct Fixture {
    pub territory_a: Uuid,
    pub territory_b: Uuid,
    /// Global admin, holding no role in either territory.
    pub admin: Actor,
    pub coordinator: Actor,
    pub auditor: Actor,
    pub volunteer: Actor,
    pub other_volunteer: Actor,
    pub site_a: Uuid,
    pub site_b: Uuid,
    /// A notebook in A owned by `volunteer`.
    pub document_a: String,
    /// A notebook in B owned by `other_volunteer`.
    pub document_b: String,
}

/// Applies the server's migrations (idempotent; safe alongside a starting
/// server) and seeds the [`Fixture`].
pub async fn seed(pool: &PgPool) -> anyhow::Result<Fixture> {
    server::MIGRATOR.run(pool).await?;
    let square = |lon: f64, lat: f64| {
        serde_json::json!({
            "type": "Polygon",
            "coordinates": [[[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01],
                             [lon, lat + 0.01], [lon, lat]]],
        })
    };
    let territory_a = admin::create_territory(
        pool,
        "Friche de la Croix-Rousse",
        Some(&square(4.83, 45.77)),
    )
    .await?;
    let territory_b =
        admin::create_territory(pool, "Berges du Rhône", Some(&square(4.84, 45.75))).await?;
    let admin = password_actor(pool, "Admin", None, true).await?;
    let coordinator = password_actor(
        pool,
        "Coordinator A",
        Some((territory_a, Role::Coordinator)),
        false,
    )
    .await?;
    let auditor = password_actor(
        pool,
        "Auditor A",
        Some((territory_a, Role::RegieAuditor)),
        false,
    )
    .await?;
    let volunteer = device_actor(pool, territory_a, coordinator.account_id, "Volunteer A").await?;
    let other_volunteer = device_actor(pool, territory_b, admin.account_id, "Volunteer B").await?;
    let site_a = admin::create_site(pool, territory_a, "Mare", 45.775, 4.835).await?;
    let site_b = admin::create_site(pool, territory_b, "Berge", 45.755, 4.845).await?;
    let document_a = seed_document(pool, territory_a, volunteer.account_id).await?;
    let document_b = seed_document(pool, territory_b, other_volunteer.account_id).await?;
    Ok(Fixture {
        territory_a,
        territory_b,
        admin,
        coordinator,
        auditor,
        volunteer,
        other_volunteer,
        site_a,
        site_b,
        document_a,
        document_b,
    })
}

/// A person who logs in with an email and password, holding `membership`.
pub async fn password_actor(
    pool: &PgPool,
    name: &str,
    membership: Option<(Uuid, Role)>,
    is_admin: bool,
) -> anyhow::Result<Actor> {
    let email = format!("{}@example.org", Uuid::new_v4().simple());
    let password = format!("{name} walks the wasteland at dawn");
    let account_id =
        admin::create_account(pool, name, Some(&email), Some(&password), is_admin).await?;
    if let Some((territory, role)) = membership {
        admin::add_membership(pool, account_id, territory, role, None).await?;
    }
    let session = admin::login(pool, &email, &password)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{name} could not log in"))?;
    Ok(Actor {
        account_id,
        token: session.token,
        login: Some(Login { email, password }),
        device_id: None,
    })
}

/// A new volunteer in `territory`, invited by `inviter` and enrolled with the
/// invitation, as a phone is.
pub async fn device_actor(
    pool: &PgPool,
    territory: Uuid,
    inviter: Uuid,
    name: &str,
) -> anyhow::Result<Actor> {
    let invitation = admin::create_invitation(
        pool,
        territory,
        Role::Volunteer,
        name,
        None,
        inviter,
        chrono::Duration::hours(1),
    )
    .await?;
    let device =
        admin::redeem_invitation(pool, &invitation.code, &format!("{name}'s phone")).await?;
    Ok(Actor {
        account_id: device.account_id,
        token: device.credential,
        login: None,
        device_id: Some(device.device_id),
    })
}

/// A notebook document row, as the sync server files one, in `territory`
/// owned by `owner`; returns its id.
pub async fn seed_document(pool: &PgPool, territory: Uuid, owner: Uuid) -> anyhow::Result<String> {
    let doc_id = format!("test-{}", Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO documents (doc_id, territory_id, owner_id, kind) VALUES ($1, $2, $3, 'notebook')",
    )
    .bind(&doc_id)
    .bind(territory)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(doc_id)
}

/// An invalid sighting in `doc_id`, as materialisation files one.
pub async fn seed_invalid_record(
    pool: &PgPool,
    doc_id: &str,
    territory: Uuid,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO invalid_records (doc_id, kind, record_key, territory_id, raw, problems) \
         VALUES ($1, 'sighting', $2, $3, '{}', \
                 '[{\"field\": \"scientificName\", \"reason\": \"missing\"}]')",
    )
    .bind(doc_id)
    .bind(Uuid::new_v4().to_string())
    .bind(territory)
    .execute(pool)
    .await?;
    Ok(())
}
