//! One call that builds what most end-to-end tests start from: a database of
//! their own, the real server running on it, a territory, and the people a
//! test names — a coordinator, a régie auditor, an admin, volunteers with
//! enrolled phones, their second phones — and, when asked, a record two of
//! one volunteer's phones edited offline into a conflict.
//!
//! ```ignore
//! let world = World::builder("Berges du Rhône")
//!     .coordinator("Marie")
//!     .auditor("Régie des berges")
//!     .volunteer("Camille")
//!     .second_device("Camille")
//!     .build()
//!     .await?;
//! let camille = world.volunteer("Camille");
//! ```
//!
//! People are made in a fixed order whatever the order of the calls:
//! coordinator, auditor, admin, then volunteers and second devices in the
//! order they were asked for.

use std::time::Duration;

use mobile_bridge::{DeviceCredential, Phone};
use schemas::{FieldRecord, RecordKind};
use serde_json::{json, Value};
use server::auth::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    accounts::{self, Actor},
    eventually, init_test_logging,
    phones::{self, Territory, Volunteer},
    records, ServerProcess, TestDatabase,
};

/// How long the two-phone conflict may take to reach the inventory.
const CONFLICT_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server on a fresh database, with one territory and its people.
/// Fields drop in order: the server stops before its database is dropped.
pub struct World {
    pub server: ServerProcess,
    pub pool: PgPool,
    /// The territory, with the coordinator account that invites its volunteers.
    pub territory: Territory,
    coordinator: Option<Actor>,
    auditor: Option<Actor>,
    admin: Option<Actor>,
    volunteers: Vec<(String, Volunteer)>,
    second_devices: Vec<(String, DeviceCredential)>,
    conflict: Option<TwoPhoneConflict>,
    pub db: TestDatabase,
}

/// A sighting (an *Erinaceus europaeus*, counted 1) that a volunteer's two
/// phones both changed offline (`individualCount` to 3 on phone A, 5 on
/// phone B) and then synced, A first: the inventory has flagged it.
pub struct TwoPhoneConflict {
    /// The volunteer's first phone, which created the notebook.
    pub phone_a: Phone,
    /// Their second phone, which fetched the notebook from the server.
    pub phone_b: Phone,
    /// The sighting both phones edited.
    pub record: Uuid,
}

/// What [`World::build`](WorldBuilder::build) makes; see the module's doc.
pub struct WorldBuilder {
    territory: String,
    boundary: Option<Value>,
    server_args: Vec<String>,
    coordinator: Option<String>,
    auditor: Option<String>,
    admin: bool,
    enrolments: Vec<Enrolment>,
    conflict_of: Option<String>,
}

enum Enrolment {
    Volunteer(String),
    SecondDevice(String),
}

impl World {
    /// A world whose territory is called `territory`; name its people with
    /// the builder's methods.
    pub fn builder(territory: &str) -> WorldBuilder {
        WorldBuilder {
            territory: territory.to_string(),
            boundary: None,
            server_args: Vec::new(),
            coordinator: None,
            auditor: None,
            admin: false,
            enrolments: Vec::new(),
            conflict_of: None,
        }
    }

    /// The territory's coordinator, who logs in with a password.
    pub fn coordinator(&self) -> &Actor {
        self.coordinator
            .as_ref()
            .expect("the world was built without .coordinator(…)")
    }

    /// The territory's régie auditor, who logs in with a password.
    pub fn auditor(&self) -> &Actor {
        self.auditor
            .as_ref()
            .expect("the world was built without .auditor(…)")
    }

    /// A global admin, holding no role in the territory.
    pub fn admin(&self) -> &Actor {
        self.admin
            .as_ref()
            .expect("the world was built without .admin()")
    }

    /// The volunteer enrolled as `name`.
    pub fn volunteer(&self, name: &str) -> &Volunteer {
        self.volunteers
            .iter()
            .find(|(named, _)| named == name)
            .map(|(_, volunteer)| volunteer)
            .unwrap_or_else(|| panic!("the world has no volunteer {name}"))
    }

    /// The first of `name`'s second devices.
    pub fn second_device(&self, name: &str) -> &DeviceCredential {
        self.second_devices(name)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("the world has no second device of {name}"))
    }

    /// All of `name`'s second devices, in the order they were enrolled.
    pub fn second_devices(&self, name: &str) -> Vec<&DeviceCredential> {
        self.second_devices
            .iter()
            .filter(|(of, _)| of == name)
            .map(|(_, device)| device)
            .collect()
    }

    /// The two-phone conflict, handed over once (a test drives its phones).
    pub fn take_conflict(&mut self) -> TwoPhoneConflict {
        self.conflict
            .take()
            .expect("the world was built without .two_phone_conflict(…), or it was taken")
    }
}

impl WorldBuilder {
    /// The territory's boundary, a GeoJSON (Multi)Polygon.
    pub fn boundary(mut self, boundary: Value) -> Self {
        self.boundary = Some(boundary);
        self
    }

    /// Extra command-line arguments for the server (e.g. `--document-idle-secs 1`).
    pub fn server_args(mut self, args: &[&str]) -> Self {
        self.server_args = args.iter().map(ToString::to_string).collect();
        self
    }

    /// A coordinator of the territory, logged in with a password.
    pub fn coordinator(mut self, name: &str) -> Self {
        self.coordinator = Some(name.to_string());
        self
    }

    /// A régie auditor of the territory, logged in with a password.
    pub fn auditor(mut self, name: &str) -> Self {
        self.auditor = Some(name.to_string());
        self
    }

    /// A global admin (named "Admin"), logged in with a password.
    pub fn admin(mut self) -> Self {
        self.admin = true;
        self
    }

    /// A volunteer invited into the territory and enrolled with the
    /// invitation, as a phone is.
    pub fn volunteer(mut self, name: &str) -> Self {
        self.enrolments.push(Enrolment::Volunteer(name.to_string()));
        self
    }

    /// Another enrolled device for the volunteer `name` (asked for earlier).
    pub fn second_device(mut self, name: &str) -> Self {
        self.enrolments
            .push(Enrolment::SecondDevice(name.to_string()));
        self
    }

    /// A [`TwoPhoneConflict`] between the phone of the volunteer `name` and
    /// their first second device (both asked for with the methods above).
    pub fn two_phone_conflict(mut self, name: &str) -> Self {
        self.conflict_of = Some(name.to_string());
        self
    }

    /// Creates the database, starts the server on it, then makes the
    /// territory and its people through the server's own account API.
    pub async fn build(self) -> anyhow::Result<World> {
        init_test_logging();
        let db = TestDatabase::create().await?;
        let args: Vec<&str> = self.server_args.iter().map(String::as_str).collect();
        let server = ServerProcess::start_with(&db.url, &args)?;
        let pool = db.pool().await?;
        let territory =
            phones::territory_within(&pool, &self.territory, self.boundary.as_ref()).await?;
        let member = |name: Option<String>, role: Role| {
            let pool = &pool;
            let territory = territory.id;
            async move {
                match name {
                    Some(name) => {
                        let actor =
                            accounts::password_actor(pool, &name, Some((territory, role)), false)
                                .await?;
                        anyhow::Ok(Some(actor))
                    }
                    None => Ok(None),
                }
            }
        };
        let coordinator = member(self.coordinator, Role::Coordinator).await?;
        let auditor = member(self.auditor, Role::RegieAuditor).await?;
        let admin = match self.admin {
            true => Some(accounts::password_actor(&pool, "Admin", None, true).await?),
            false => None,
        };
        let mut volunteers: Vec<(String, Volunteer)> = Vec::new();
        let mut second_devices = Vec::new();
        for enrolment in self.enrolments {
            match enrolment {
                Enrolment::Volunteer(name) => {
                    let volunteer = phones::enrol_volunteer(&pool, &territory, &name).await?;
                    volunteers.push((name, volunteer));
                }
                Enrolment::SecondDevice(name) => {
                    let (_, volunteer) = volunteers
                        .iter()
                        .find(|(named, _)| *named == name)
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "a second device of {name}, who is not a volunteer (yet)"
                            )
                        })?;
                    let device = phones::enrol_second_device(&pool, &territory, volunteer).await?;
                    second_devices.push((name, device));
                }
            }
        }
        let mut world = World {
            server,
            pool,
            territory,
            coordinator,
            auditor,
            admin,
            volunteers,
            second_devices,
            conflict: None,
            db,
        };
        if let Some(name) = self.conflict_of {
            world.conflict = Some(two_phone_conflict(&world, &name).await?);
        }
        Ok(world)
    }
}

/// See [`TwoPhoneConflict`].
async fn two_phone_conflict(world: &World, name: &str) -> anyhow::Result<TwoPhoneConflict> {
    let url = world.server.sync_url();
    let volunteer = world.volunteer(name);
    let mut phone_a =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    let sighting = records::sighting(volunteer.account_id, "Erinaceus europaeus", 1);
    let record = sighting.id();
    phone_a.record(&sighting)?;
    phone_a.go_online(&url).await?;
    phone_a.wait_synced(CONFLICT_TIMEOUT).await?;
    let second_device = world.second_device(name).clone();
    let mut phone_b =
        Phone::fetch_notebook(&url, Some(second_device), phone_a.notebook_id()).await?;
    phone_a.go_offline();
    phone_b.go_offline();
    phone_a.edit(RecordKind::Sighting, record, "individualCount", &json!(3))?;
    phone_b.edit(RecordKind::Sighting, record, "individualCount", &json!(5))?;
    phone_a.go_online(&url).await?;
    phone_a.wait_synced(CONFLICT_TIMEOUT).await?;
    phone_b.go_online(&url).await?;
    phone_b.wait_synced(CONFLICT_TIMEOUT).await?;
    eventually(
        CONFLICT_TIMEOUT,
        "the conflict in the inventory",
        || async {
            let conflicted: Option<bool> =
                sqlx::query_scalar("SELECT has_conflicts FROM sightings WHERE id = $1")
                    .bind(record)
                    .fetch_optional(&world.pool)
                    .await?;
            Ok((conflicted == Some(true)).then_some(()))
        },
    )
    .await?;
    Ok(TwoPhoneConflict {
        phone_a,
        phone_b,
        record,
    })
}
