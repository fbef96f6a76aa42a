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
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{AuthUser, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::{admin, Role};

/// Long enough for a coordinator to hand codes out at a Saturday training
/// session and for the volunteers to enrol by Monday.
const DEFAULT_TTL_HOURS: i64 = 72;

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::POST, "/api/invitations", create_invitation)
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
    let qr_payload = json!({
        "code": invitation.code,
        "server": super::public_url(&state, &headers),
    })
    .to_string();
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            id: invitation.id,
            code: invitation.code,
            expires_at: invitation.expires_at,
            territory_id: territory,
            role: request.role,
            qr_payload,
        }),
    ))
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
        (status = 410, description = "The invitation was redeemed already, or has expired", body = ApiError),
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
