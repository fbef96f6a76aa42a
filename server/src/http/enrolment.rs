//! Enrolling phones without typing passwords in the field: a coordinator
//! creates a single-use, expiring invitation (a short code, or a QR code of
//! it); the phone redeems it once for a device credential bound to that person
//! and that phone.

use axum::{extract::State, http::Method, http::StatusCode, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InvitationRequest {
    territory_id: Uuid,
    display_name: String,
    #[serde(default = "volunteer")]
    role: Role,
    /// Enrol another phone of this existing person instead of a new person.
    account_id: Option<Uuid>,
    ttl_hours: Option<i64>,
}

fn volunteer() -> Role {
    Role::Volunteer
}

async fn create_invitation(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<InvitationRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    // What the phone scans. The server's public address is not known here
    // (it may sit behind a proxy); the page showing the QR code adds
    // `"server"` from its own origin.
    let qr_payload = json!({ "code": invitation.code }).to_string();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": invitation.id,
            "code": invitation.code,
            "expiresAt": invitation.expires_at,
            "territoryId": territory,
            "role": request.role,
            "qrPayload": qr_payload,
        })),
    ))
}

/// No Debug: it holds the invitation code.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnrolRequest {
    code: String,
    device_name: String,
}

/// Public: the code is the secret.
async fn enrol(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EnrolRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let device = admin::redeem_invitation(&state.pool, &request.code, &request.device_name).await?;
    tracing::info!(device = %device.device_id, account = %device.account_id, "phone enrolled");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "accountId": device.account_id,
            "deviceId": device.device_id,
            "credential": device.credential,
            "territoryId": device.territory_id,
        })),
    ))
}
