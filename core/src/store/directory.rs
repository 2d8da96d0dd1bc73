//! Writing the directory: the hierarchy, users, devices, report categories and visit rules.
//! Admins do this; every phone reads the result from its query tables.

use super::Store;
use crate::directory::{Category, Device, NewCategory, NewUnit, NewUser, Unit, User, VisitRules};
use crate::document::Collection;
use crate::document::{DocId, Touched};
use crate::error::{Error, Result};
use crate::ids::{UnitId, UserId};

impl Store {
    pub fn add_unit(&mut self, new: NewUnit) -> Result<Unit> {
        new.validate()?;
        if let Some(parent) = &new.parent {
            let kind = self.unit_kind(parent)?;
            if Some(kind) != new.kind.parent_kind() {
                return Err(Error::invalid(
                    "parent unit",
                    format!(
                        "a {} must hang under a {}",
                        new.kind.as_str(),
                        new.kind.parent_kind().map_or("nothing", |k| k.as_str())
                    ),
                ));
            }
        }
        let unit = Unit { id: UnitId::generate(), kind: new.kind, parent: new.parent, name: new.name, deleted: false };
        self.write(
            &DocId::Directory,
            |d| d.put_map(Collection::Units, unit.id.as_str(), &unit),
            |ix, _| ix.unit(&unit),
        )?;
        Ok(unit)
    }

    pub fn add_user(&mut self, new: NewUser) -> Result<User> {
        new.validate()?;
        self.unit_kind(&new.unit)?;
        let user = User {
            id: UserId::generate(),
            name: new.name,
            role: new.role,
            unit: new.unit,
            department: new.department,
            deleted: false,
        };
        self.write(
            &DocId::Directory,
            |d| d.put_map(Collection::Users, user.id.as_str(), &user),
            |ix, _| ix.user(&user),
        )?;
        Ok(user)
    }

    /// Moves a user to another unit (a grid worker to another grid): from the next sync on they
    /// may read and change what the new unit's users may, and no longer what only the old one
    /// gave them. Their phone's unsynced changes to documents they may no longer change are
    /// refused by the server document by document, and stay on the phone.
    pub fn move_user(&mut self, user: &UserId, unit: &UnitId) -> Result<User> {
        self.unit_kind(unit)?;
        let mut moved = self
            .doc(&DocId::Directory)?
            .get_map::<User>(Collection::Users, user.as_str())?
            .filter(|u| !u.deleted)
            .ok_or_else(|| Error::not_found("user", user))?;
        moved.unit = unit.clone();
        self.write(
            &DocId::Directory,
            |d| d.put_map(Collection::Users, moved.id.as_str(), &moved),
            |ix, _| ix.user(&moved),
        )?;
        Ok(moved)
    }

    /// Records in the directory that this device belongs to `user` and writes with this store's actor id.
    pub fn register_device(&mut self, user: &UserId) -> Result<()> {
        let (actor, key) = (self.actor_id(), self.device_public_key()?);
        self.enrol_device(user, &actor, Some(&key))
    }

    /// Records in the directory that the device writing with `actor` (hex) belongs to `user`,
    /// with the public key it proved (`public_key`, 64 hexadecimal digits): what the sync server
    /// does when a phone enrols or binds its key, so every phone's directory learns it and checks
    /// the device's signed changes with it. An actor id another user's device already writes with
    /// is refused (`actor_taken`): what a device wrote stays its user's; so is a key other than
    /// the one the directory already names for the device. Enrolling the same again changes nothing.
    pub fn enrol_device(&mut self, user: &UserId, actor: &str, public_key: Option<&str>) -> Result<()> {
        self.enrol(user, actor, false, public_key)
    }

    /// Records this store's own actor as the sync server's device, for `user` (an admin).
    pub(crate) fn enrol_as_server(&mut self, user: &UserId) -> Result<()> {
        let (actor, key) = (self.actor_id(), self.device_public_key()?);
        self.enrol(user, &actor, true, Some(&key))
    }

    fn enrol(&mut self, user: &UserId, actor: &str, server: bool, public_key: Option<&str>) -> Result<()> {
        self.require_user(user)?;
        let actor = crate::ids::ActorHex::parse(actor)?.as_str().to_string();
        let mut public_key = match public_key {
            Some(k) => Some(crate::identity::public_key_hex(k)?),
            None => None,
        };
        if let Some(known) = self.doc(&DocId::Directory)?.get_map::<Device>(Collection::Devices, &actor)? {
            if &known.user != user || known.server != server {
                return Err(Error::refused(
                    crate::error::RefusalCode::ActorTaken,
                    "another device already writes with this actor id",
                ));
            }
            if known.revoked_at.is_some() {
                return Err(Error::refused(
                    crate::error::RefusalCode::ActorTaken,
                    "this device was revoked; a revoked device stays revoked",
                ));
            }
            match (&known.public_key, &public_key) {
                (Some(k), Some(new)) if k != new => {
                    return Err(Error::refused(
                        crate::error::RefusalCode::ActorTaken,
                        "the directory names another key for this device; a device's key is never replaced",
                    ));
                }
                (Some(_), None) => public_key = known.public_key.clone(),
                _ => {}
            }
            if !known.deleted && known.public_key == public_key {
                return Ok(()); // nothing to change
            }
        }
        let device = Device {
            id: actor.clone(),
            user: user.clone(),
            actor,
            deleted: false,
            revoked_at: None,
            server,
            public_key,
        };
        self.write(
            &DocId::Directory,
            |d| d.put_map(Collection::Devices, &device.id, &device),
            |ix, _| ix.device(&device),
        )
    }

    /// Marks the device writing with `actor` (hex) as revoked in the directory, at this store's
    /// time: what the sync server does when an admin revokes a lost phone, so that every phone
    /// learns it and refuses it as a peer. Revoking twice keeps the first time.
    pub fn revoke_device(&mut self, actor: &str) -> Result<()> {
        let actor = actor.to_ascii_lowercase();
        let mut device = self
            .doc(&DocId::Directory)?
            .get_map::<Device>(Collection::Devices, &actor)?
            .ok_or_else(|| Error::not_found("device", &actor))?;
        if device.revoked_at.is_some() {
            return Ok(());
        }
        device.revoked_at = Some(self.now());
        self.write(
            &DocId::Directory,
            |d| d.put_map(Collection::Devices, &device.id, &device),
            |ix, _| ix.device(&device),
        )
    }

    /// Adds or changes a report category and its deadlines.
    pub fn set_category(&mut self, new: NewCategory) -> Result<()> {
        new.validate()?;
        let c = Category {
            id: new.id,
            name: new.name,
            triage_hours: new.triage_hours,
            feedback_hours: new.feedback_hours,
            resolve_hours: new.resolve_hours,
            resolve_hours_by_class: new.resolve_hours_by_class,
            duplicate_radius_m: new.duplicate_radius_m,
            duplicate_window_hours: new.duplicate_window_hours,
            deleted: false,
        };
        self.write(&DocId::Directory, |d| d.put_map(Collection::Categories, c.id.as_str(), &c), |ix, _| ix.category(&c))
    }

    /// Replaces the rules that say how often households must be visited; every household's due
    /// date follows in the same transaction.
    pub fn set_visit_rules(&mut self, rules: &VisitRules) -> Result<()> {
        rules.validate()?;
        let entries = rules.to_entries();
        self.write(
            &DocId::Directory,
            |d| entries.iter().try_for_each(|(k, h)| d.put_int(Collection::VisitRules, k, *h as i64)),
            |ix, doc| {
                entries.iter().try_for_each(|(k, _)| {
                    ix.project(doc, &Touched { collection: Collection::VisitRules, key: Some(k.clone()) })
                })
            },
        )
    }

    pub fn visit_rules(&self) -> &VisitRules {
        &self.rules
    }
}
