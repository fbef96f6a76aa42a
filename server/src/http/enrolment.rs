//! Enrolling phones without typing passwords in the field: a coordinator
//! creates a single-use, expiring invitation (a short code, or a QR code of
//! it); the phone redeems it once for a device credential bound to that person
//! and that phone.

use axum::{
    extract::State,
    http::{HeaderMap, Method, StatusCode},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{AuthUser, IdPath, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::{admin, Role};

/// Long enough for a coordinator to hand codes out at a Saturday training
/// session and for the volunteers to enrol by Monday.
const DEFAULT_TTL_HOURS: i64 = 72;

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::POST, "/api/invitations", create_invitation)
        .route(
            Method::POST,
            "/api/invitations/batch",
            create_invitation_batch,
        )
        .route(
            Method::POST,
            "/api/invitations/{id}/revoke",
            revoke_invitation,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/invitations",
            list_invitations,
        )
        .route(Method::POST, "/api/enrol", enrol)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InvitationRequest {
    /// The territory the person joins.
    territory_id: Uuid,
    /// The new person's name (trimmed, 1 to 200 characters); ignored with `accountId`.
    #[schema(example = "Lou")]
    display_name: String,
    /// Coordinators invite volunteers only; admins invite any role.
    #[serde(default = "volunteer")]
    #[schema(default = "volunteer")]
    role: Role,
    /// Enrol another phone of this existing person instead of a new person.
    account_id: Option<Uuid>,
    /// How long the code may be redeemed, from 1 to 720 hours (30 days).
    #[schema(default = 72, minimum = 1, maximum = 720)]
    ttl_hours: Option<i64>,
}

/// A new single-use invitation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Invitation {
    id: Uuid,
    /// The code the phone redeems (`POST /api/enrol`), shown once.
    #[schema(example = "ABCDE-FGHJK")]
    code: String,
    expires_at: DateTime<Utc>,
    territory_id: Uuid,
    role: Role,
    /// Whom it is for (the name the new account gets).
    display_name: String,
    /// What a QR code of the invitation holds, as a JSON string:
    /// `{"code": …, "server": …}`, the server's address being `--public-url`
    /// (else the address this request came to), so the field app enrols
    /// with the right server whatever address it was opened at.
    #[schema(example = r#"{"code":"ABCDE-FGHJK","server":"https://terrain.example.org"}"#)]
    qr_payload: String,
}

fn volunteer() -> Role {
    Role::Volunteer
}

/// Creates an invitation to enrol a phone
///
/// Coordinators invite volunteers of their territory (a second phone of one
/// of them with `accountId`); admins invite anyone with any role.
#[utoipa::path(
    post,
    path = "/api/invitations",
    operation_id = "createInvitation",
    request_body = InvitationRequest,
    responses(
        (status = 201, description = "The invitation, with its code", body = Invitation),
        (status = 400, description = "A field is missing or invalid (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory (or an admin), or a role or account only an admin may invite", body = ApiError),
        (status = 404, description = "No such territory or account", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn create_invitation(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(request): JsonBody<InvitationRequest>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let territory = request.territory_id;
    user.require_role(territory, &[Role::Coordinator], "invite people to it")?;
    if !user.0.is_admin {
        if request.role != Role::Volunteer {
            return Err(ApiError::forbidden(
                "coordinators invite volunteers; an admin invites coordinators and régie auditors",
            ));
        }
        if let Some(account) = request.account_id {
            // Whoever holds the code becomes that person on the new phone: a
            // coordinator may do that only for people who are nothing more
            // than volunteers in territories they coordinate.
            let coordinated = user.0.territories_with(&[Role::Coordinator]);
            let only_volunteer_here: Option<bool> = sqlx::query_scalar(
                "SELECT NOT a.is_admin AND NOT EXISTS ( \
                   SELECT 1 FROM memberships m WHERE m.account_id = a.id \
                     AND NOT (m.role = 'volunteer' AND m.territory_id = ANY($2))) \
                 FROM accounts a WHERE a.id = $1",
            )
            .bind(account)
            .bind(&coordinated)
            .fetch_optional(&state.pool)
            .await?;
            match only_volunteer_here {
                None => return Err(ApiError::NotFound(format!("account {account}"))),
                Some(false) => {
                    return Err(ApiError::forbidden(
                        "only an admin may enrol a phone for someone who is more than a \
                         volunteer in your territories",
                    ))
                }
                Some(true) => {}
            }
        }
    }
    let ttl_hours = request.ttl_hours.unwrap_or(DEFAULT_TTL_HOURS);
    let ttl = chrono::Duration::try_hours(ttl_hours)
        .ok_or_else(|| ApiError::bad_request("ttlHours", format!("{ttl_hours} is too large")))?;
    let invitation = admin::create_invitation(
        &state.pool,
        territory,
        request.role,
        &request.display_name,
        request.account_id,
        user.0.account_id,
        ttl,
    )
    .await?;
    // What the phone scans: the code, and where to redeem it.
    let qr_payload = qr_payload(&invitation.code, &super::public_url(&state, &headers));
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            id: invitation.id,
            code: invitation.code,
            expires_at: invitation.expires_at,
            territory_id: territory,
            role: request.role,
            display_name: request.display_name.trim().to_string(),
            qr_payload,
        }),
    ))
}

/// What the phone scans for the invitation `code`: the code, and the
/// address of the `server` to redeem it at.
fn qr_payload(code: &str, server: &str) -> String {
    json!({ "code": code, "server": server }).to_string()
}

/// A batch of volunteer invitations for an event or a class: either `names`,
/// or `prefix` and `count` ("Classe 5B" and 30 make "Classe 5B 1" to
/// "Classe 5B 30").
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InvitationBatchRequest {
    territory_id: Uuid,
    /// One invitation per name (1 to 100 names, each 1 to 200 characters).
    #[schema(example = json!(["Lou", "Sam"]))]
    names: Option<Vec<String>>,
    /// With `count`, instead of `names`: each invitation is named `prefix n`.
    #[schema(example = "Classe 5B")]
    prefix: Option<String>,
    /// With `prefix`: how many invitations, from 1 to 100.
    #[schema(minimum = 1, maximum = 100)]
    count: Option<i64>,
    /// How long the codes may be redeemed, from 1 to 720 hours (30 days).
    #[schema(default = 72, minimum = 1, maximum = 720)]
    ttl_hours: Option<i64>,
}

/// The invitations of a batch, in the order of the names, each code shown once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InvitationBatch {
    invitations: Vec<Invitation>,
}

/// Creates a batch of volunteer invitations
///
/// For an event or a class: up to 100 invitations at once, named from a list
/// or numbered from a prefix, all created or none. Coordinators of the
/// territory and admins.
#[utoipa::path(
    post,
    path = "/api/invitations/batch",
    operation_id = "createInvitationBatch",
    request_body = InvitationBatchRequest,
    responses(
        (status = 201, description = "The invitations, with their codes", body = InvitationBatch),
        (status = 400, description = "A field is missing or invalid (named in `field`), e.g. more than 100 invitations", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory (or an admin)", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn create_invitation_batch(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(request): JsonBody<InvitationBatchRequest>,
) -> Result<(StatusCode, Json<InvitationBatch>), ApiError> {
    let territory = request.territory_id;
    let server = super::public_url(&state, &headers);
    user.require_role(territory, &[Role::Coordinator], "invite people to it")?;
    let names = match (request.names, request.prefix, request.count) {
        (Some(names), None, None) => names,
        (None, Some(prefix), Some(count)) => {
            let max = admin::MAX_BATCH_INVITATIONS as i64;
            if !(1..=max).contains(&count) {
                return Err(ApiError::bad_request(
                    "count",
                    format!("a batch has from 1 to {max} invitations (got {count})"),
                ));
            }
            let prefix = prefix.trim();
            if prefix.is_empty() {
                return Err(ApiError::bad_request("prefix", "must not be empty"));
            }
            (1..=count).map(|n| format!("{prefix} {n}")).collect()
        }
        _ => {
            return Err(ApiError::bad_request(
                "names",
                "give either names, or prefix and count",
            ))
        }
    };
    let ttl_hours = request.ttl_hours.unwrap_or(DEFAULT_TTL_HOURS);
    let ttl = chrono::Duration::try_hours(ttl_hours)
        .ok_or_else(|| ApiError::bad_request("ttlHours", format!("{ttl_hours} is too large")))?;
    let created =
        admin::create_invitation_batch(&state.pool, territory, &names, user.0.account_id, ttl)
            .await?;
    let invitations = created
        .into_iter()
        .zip(names)
        .map(|(invitation, name)| Invitation {
            id: invitation.id,
            qr_payload: qr_payload(&invitation.code, &server),
            code: invitation.code,
            expires_at: invitation.expires_at,
            territory_id: territory,
            role: Role::Volunteer,
            display_name: name.trim().to_string(),
        })
        .collect();
    Ok((StatusCode::CREATED, Json(InvitationBatch { invitations })))
}

/// An invitation as the list shows it: its state, never its code (only a
/// hash of it is kept).
// Documentation only: the query of `list_invitations` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InvitationSummary {
    id: Uuid,
    display_name: String,
    role: Role,
    /// `pending` (may be redeemed), `redeemed`, `expired` or `revoked`.
    #[schema(example = "pending")]
    state: String,
    created_at: DateTime<Utc>,
    created_by_name: String,
    expires_at: DateTime<Utc>,
    #[schema(required = true)]
    redeemed_at: Option<DateTime<Utc>>,
    /// The phone enrolled with it (see `GET /api/devices`).
    #[schema(required = true)]
    redeemed_device_id: Option<Uuid>,
    #[schema(required = true)]
    revoked_at: Option<DateTime<Utc>>,
}

/// Lists a territory's invitations
///
/// Newest first, with their state; the codes are not kept, so not listed.
/// Coordinators of the territory and admins.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/invitations",
    operation_id = "listInvitations",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The invitations, newest first", body = [InvitationSummary]),
        (status = 400, description = "The id is not a UUID (`field`: `id`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory (or an admin)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn list_invitations(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, &[Role::Coordinator], "see its invitations")?;
    let invitations: Value = sqlx::query_scalar(
        "SELECT COALESCE(jsonb_agg(jsonb_build_object( \
           'id', i.id, 'displayName', i.display_name, 'role', i.role, \
           'state', CASE WHEN i.revoked_at IS NOT NULL THEN 'revoked' \
                         WHEN i.redeemed_at IS NOT NULL THEN 'redeemed' \
                         WHEN i.expires_at <= now() THEN 'expired' \
                         ELSE 'pending' END, \
           'createdAt', i.created_at, 'createdByName', a.display_name, \
           'expiresAt', i.expires_at, 'redeemedAt', i.redeemed_at, \
           'redeemedDeviceId', i.redeemed_device_id, 'revokedAt', i.revoked_at) \
           ORDER BY i.created_at DESC, i.display_name), '[]') \
         FROM invitations i JOIN accounts a ON a.id = i.created_by \
         WHERE i.territory_id = $1",
    )
    .bind(territory)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(invitations))
}

/// Revokes an invitation not yet redeemed
///
/// Its code is refused from now on (410). Coordinators of its territory and
/// admins.
#[utoipa::path(
    post,
    path = "/api/invitations/{id}/revoke",
    operation_id = "revokeInvitation",
    params(("id" = Uuid, Path, description = "The invitation")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a UUID (`field`: `id`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of its territory (or an admin)", body = ApiError),
        (status = 404, description = "No such invitation", body = ApiError),
        (status = 409, description = "Already redeemed (revoke the phone instead) or already revoked", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn revoke_invitation(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(invitation): IdPath,
) -> Result<StatusCode, ApiError> {
    let territory: Option<Uuid> =
        sqlx::query_scalar("SELECT territory_id FROM invitations WHERE id = $1")
            .bind(invitation)
            .fetch_optional(&state.pool)
            .await?;
    let Some(territory) = territory else {
        return Err(ApiError::NotFound(format!("invitation {invitation}")));
    };
    user.require_role(territory, &[Role::Coordinator], "revoke its invitations")?;
    match admin::revoke_invitation(&state.pool, invitation, user.0.account_id).await? {
        admin::RevokeInvitation::Revoked => Ok(StatusCode::NO_CONTENT),
        admin::RevokeInvitation::NotFound => {
            Err(ApiError::NotFound(format!("invitation {invitation}")))
        }
        admin::RevokeInvitation::AlreadyRedeemed => Err(ApiError::Conflict {
            field: "id".into(),
            message: "this invitation has been redeemed already; revoke the phone it enrolled \
                      instead"
                .into(),
        }),
        admin::RevokeInvitation::AlreadyRevoked => Err(ApiError::Conflict {
            field: "id".into(),
            message: "this invitation is revoked already".into(),
        }),
    }
}

/// No Debug: it holds the invitation code.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnrolRequest {
    /// The invitation's code, as printed or scanned.
    #[schema(example = "ABCDE-FGHJK")]
    code: String,
    /// A name for the phone (trimmed, 1 to 200 characters).
    #[schema(example = "Camille's phone")]
    device_name: String,
}

/// A phone enrolled: its credential, shown once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Enrolment {
    account_id: Uuid,
    device_id: Uuid,
    /// The device credential (`fnd_…`): `Authorization: Bearer <credential>`.
    credential: String,
    territory_id: Uuid,
}

/// Enrols a phone with an invitation code
///
/// Public: the code is the secret. Each code is redeemed once.
#[utoipa::path(
    post,
    path = "/api/enrol",
    operation_id = "enrol",
    request_body = EnrolRequest,
    responses(
        (status = 201, description = "The phone is enrolled", body = Enrolment),
        (status = 400, description = "A field is missing or invalid (named in `field`)", body = ApiError),
        (status = 401, description = "No invitation has this code", body = ApiError),
        (status = 410, description = "The invitation was redeemed already, has expired or was revoked", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
)]
async fn enrol(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EnrolRequest>,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    let device = admin::redeem_invitation(&state.pool, &request.code, &request.device_name).await?;
    tracing::info!(device = %device.device_id, account = %device.account_id, "phone enrolled");
    Ok((
        StatusCode::CREATED,
        Json(Enrolment {
            account_id: device.account_id,
            device_id: device.device_id,
            credential: device.credential,
            territory_id: device.territory_id,
        }),
    ))
}
