//! A territory's export settings: the licence and contact its exports
//! declare, and the sensitive taxa whose coordinates they generalise.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::sensitive::normalise_scientific_name;

/// The licences GBIF publishes occurrence data under.
pub const LICENCES: [&str; 3] = ["CC0-1.0", "CC-BY-4.0", "CC-BY-NC-4.0"];
/// Grid squares a sensitive sighting may be generalised to, in metres.
pub const GRIDS: [i32; 4] = [1000, 2000, 5000, 10000];
/// Taxa one territory's list holds at most.
pub const MAX_SENSITIVE_TAXA: usize = 5000;
const MAX_TEXT: usize = 200;

/// Licence URL, as Darwin Core's `license` term wants it.
pub fn licence_url(licence: &str) -> &'static str {
    match licence {
        "CC0-1.0" => "http://creativecommons.org/publicdomain/zero/1.0/legalcode",
        "CC-BY-NC-4.0" => "http://creativecommons.org/licenses/by-nc/4.0/legalcode",
        _ => "http://creativecommons.org/licenses/by/4.0/legalcode",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SensitiveTaxon {
    /// TAXREF `CD_NOM`; sightings with this id are generalised.
    #[serde(default)]
    pub taxon_id: Option<i64>,
    /// Sightings with this name are generalised too, id or not: compared
    /// normalised (case, whitespace and authorship do not count, see
    /// `sensitive::normalise_scientific_name`); a genus covers its species.
    pub scientific_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportSettings {
    /// `CC0-1.0`, `CC-BY-4.0` or `CC-BY-NC-4.0`.
    pub licence: String,
    /// Who publishes the data (the régie, the association).
    #[serde(default)]
    pub organisation: Option<String>,
    #[serde(default)]
    pub contact_name: Option<String>,
    #[serde(default)]
    pub contact_email: Option<String>,
    /// 1000, 2000, 5000 or 10000.
    pub sensitive_grid_metres: i32,
    #[serde(default)]
    pub sensitive_taxa: Vec<SensitiveTaxon>,
}

/// A setting that cannot be taken: the field (JSON path) and why.
#[derive(Debug)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn check_text(field: &str, value: &Option<String>) -> Result<(), Invalid> {
    match value {
        Some(text) if text.trim().is_empty() => {
            Err(invalid(field, "must not be blank (omit it instead)"))
        }
        Some(text) if text.chars().count() > MAX_TEXT => {
            Err(invalid(field, format!("at most {MAX_TEXT} characters")))
        }
        _ => Ok(()),
    }
}

impl ExportSettings {
    pub fn validate(&self) -> Result<(), Invalid> {
        if !LICENCES.contains(&self.licence.as_str()) {
            return Err(invalid(
                "licence",
                format!("must be one of {}", LICENCES.join(", ")),
            ));
        }
        if !GRIDS.contains(&self.sensitive_grid_metres) {
            return Err(invalid(
                "sensitiveGridMetres",
                "must be 1000, 2000, 5000 or 10000",
            ));
        }
        check_text("organisation", &self.organisation)?;
        check_text("contactName", &self.contact_name)?;
        check_text("contactEmail", &self.contact_email)?;
        if let Some(email) = &self.contact_email {
            if !email.contains('@') || email.contains(char::is_whitespace) {
                return Err(invalid("contactEmail", "must be an email address"));
            }
        }
        if self.sensitive_taxa.len() > MAX_SENSITIVE_TAXA {
            return Err(invalid(
                "sensitiveTaxa",
                format!("at most {MAX_SENSITIVE_TAXA} taxa"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, taxon) in self.sensitive_taxa.iter().enumerate() {
            let name = taxon.scientific_name.trim();
            // Invisible characters alone are no name: nothing would match it.
            if normalise_scientific_name(name).is_empty() || name.chars().count() > MAX_TEXT {
                return Err(invalid(
                    format!("sensitiveTaxa[{i}].scientificName"),
                    format!("must be 1 to {MAX_TEXT} characters"),
                ));
            }
            if taxon.taxon_id.is_some_and(|id| id < 1) {
                return Err(invalid(
                    format!("sensitiveTaxa[{i}].taxonId"),
                    "must be 1 or more",
                ));
            }
            let key = taxon
                .taxon_id
                .map(|id| id.to_string())
                .unwrap_or_else(|| normalise_scientific_name(name));
            if !seen.insert(key) {
                return Err(invalid(format!("sensitiveTaxa[{i}]"), "is listed twice"));
            }
        }
        Ok(())
    }
}

pub async fn get(pool: &PgPool, territory: Uuid) -> sqlx::Result<ExportSettings> {
    let (licence, organisation, contact_name, contact_email, sensitive_grid_metres): (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        i32,
    ) = sqlx::query_as(
        "SELECT export_licence, export_organisation, export_contact_name, export_contact_email, \
                sensitive_grid_m FROM territories WHERE id = $1",
    )
    .bind(territory)
    .fetch_one(pool)
    .await?;
    let sensitive_taxa = sqlx::query_as::<_, (Option<i64>, String)>(
        "SELECT taxon_id, scientific_name FROM sensitive_taxa WHERE territory_id = $1 \
         ORDER BY lower(scientific_name), taxon_id",
    )
    .bind(territory)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(taxon_id, scientific_name)| SensitiveTaxon {
        taxon_id,
        scientific_name,
    })
    .collect();
    Ok(ExportSettings {
        licence,
        organisation,
        contact_name,
        contact_email,
        sensitive_grid_metres,
        sensitive_taxa,
    })
}

/// Replaces the settings (validated by the caller) in one transaction, and
/// records the change in the audit trail: what is withheld from exports is
/// something a régie must be able to account for.
pub async fn put(
    pool: &PgPool,
    territory: Uuid,
    settings: &ExportSettings,
    set_by: Uuid,
) -> sqlx::Result<()> {
    let before = serde_json::to_value(get(pool, territory).await?).unwrap_or_default();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE territories SET export_licence = $2, export_organisation = $3, \
           export_contact_name = $4, export_contact_email = $5, sensitive_grid_m = $6 WHERE id = $1",
    )
    .bind(territory)
    .bind(&settings.licence)
    .bind(settings.organisation.as_deref().map(str::trim))
    .bind(settings.contact_name.as_deref().map(str::trim))
    .bind(settings.contact_email.as_deref().map(str::trim))
    .bind(settings.sensitive_grid_metres)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM sensitive_taxa WHERE territory_id = $1")
        .bind(territory)
        .execute(&mut *tx)
        .await?;
    let ids: Vec<Option<i64>> = settings.sensitive_taxa.iter().map(|t| t.taxon_id).collect();
    let names: Vec<String> = settings
        .sensitive_taxa
        .iter()
        .map(|t| t.scientific_name.trim().to_string())
        .collect();
    sqlx::query(
        "INSERT INTO sensitive_taxa (territory_id, taxon_id, scientific_name) \
         SELECT $1, id, name FROM unnest($2::bigint[], $3::text[]) AS u(id, name)",
    )
    .bind(territory)
    .bind(&ids)
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_pending (territory_id, action, actor_id, before, after) \
         VALUES ($1, 'export_settings_set', $2, $3, $4)",
    )
    .bind(territory)
    .bind(set_by)
    .bind(before)
    .bind(serde_json::to_value(settings).unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
